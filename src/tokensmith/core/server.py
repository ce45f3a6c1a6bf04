"""``AuthorizationServer``: a thin facade over the protocol's rooms, framework-free.

Routes reach the rooms through it; it builds each once and holds no logic of its own. The token
side lives below it and never calls back: ``core.context`` (policy, clock, keys, pepper, audit,
cached client/API lookups), ``core.issuance`` (``TokenIssuer``), ``core.token``
(``TokenEndpoint`` and the grant registry), ``core.introspection``, ``core.revocation`` and
``core.userinfo``. The browser flows (authorize, login, consent, logout, account) live in
``core.authorize``, ``core.interaction``, ``core.logout`` and ``core.account``, which use its
lookups (``get_client``, ``get_api``, ``apis_for``, ``now``)."""

from __future__ import annotations

from tokensmith.core.accounts import Accounts, StoreAccounts
from tokensmith.core.audit import AuditSink, discard
from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import Clock
from tokensmith.core.context import ServerContext
from tokensmith.core.dynamic_registration import Registrar
from tokensmith.core.introspection import IntrospectionEndpoint
from tokensmith.core.issuance import TokenIssuer
from tokensmith.core.keys import KeyRing
from tokensmith.core.metadata_document import DocumentFetcher
from tokensmith.core.mfa import Factors
from tokensmith.core.models import (
    Api,
    Client,
)
from tokensmith.core.passkeys import Passkeys
from tokensmith.core.passwords import Passwords
from tokensmith.core.policy import ServerPolicy
from tokensmith.core.ports import Stores
from tokensmith.core.recovery_codes import RecoveryCodes
from tokensmith.core.revocation import RevocationEndpoint
from tokensmith.core.secret_box import SecretBox
from tokensmith.core.token import GrantRegistry, TokenEndpoint, default_grants
from tokensmith.core.totp import Totp
from tokensmith.core.userinfo import UserInfoEndpoint


class AuthorizationServer:
    def __init__(
        self,
        *,
        policy: ServerPolicy,
        keys: KeyRing,
        pepper: bytes,
        passwords: Passwords,
        clock: Clock,
        grants: GrantRegistry | None = None,
        audit: AuditSink = discard,
        accounts: Accounts | None = None,
        documents: DocumentFetcher | None = None,
        kek: bytes | None = None,
        totp_label: str = "tokensmith",
        factors: Factors | None = None,
    ) -> None:
        """``kek``: the key-encryption key that seals TOTP keys at rest (else a key derived
        from the pepper, ``core.secret_box``); ``factors``: the second factors (default: TOTP
        and passkeys, with recovery codes as their fallback)."""
        self.passwords = passwords
        if accounts is None:
            accounts = StoreAccounts(passwords)
        elif isinstance(accounts, StoreAccounts):
            accounts.bind(passwords)
        self.totp = Totp(SecretBox(pepper=pepper, kek=kek), label=totp_label)
        self.recovery_codes = RecoveryCodes(pepper)
        self.passkeys = Passkeys(
            issuer=policy.issuer,
            rp_name=totp_label,
            pepper=pepper,
            audit=lambda event: self.context.audit(event),
        )
        self.factors = (
            factors
            if factors is not None
            else Factors((self.passkeys, self.totp, self.recovery_codes))
        )
        self.context = ServerContext(
            policy=policy,
            clock=clock,
            keys=keys,
            pepper=pepper,
            audit=audit,
            documents=documents,
            accounts=accounts,
        )
        self.tokens = TokenIssuer(self.context)
        self.grants = grants if grants is not None else default_grants()
        authenticator = ClientAuthenticator(self.context)
        self.authenticator = authenticator
        self.token_endpoint = TokenEndpoint(
            context=self.context,
            issuer=self.tokens,
            authenticator=authenticator,
            grants=self.grants,
        )
        self.introspection = IntrospectionEndpoint(
            context=self.context, authenticator=authenticator
        )
        self.revocation = RevocationEndpoint(context=self.context, authenticator=authenticator)
        self.userinfo = UserInfoEndpoint(context=self.context)
        self.registration = Registrar(
            self.context, registration_uri=policy.endpoints.registration or ""
        )

    # -- the context, for the authorization endpoint's methods and the browser routes -------

    @property
    def accounts(self) -> Accounts:
        """The users signed in (``core.accounts``)."""
        return self.context.accounts

    @property
    def policy(self) -> ServerPolicy:
        return self.context.policy

    @property
    def issuer(self) -> str:
        return self.context.issuer

    @property
    def pepper(self) -> bytes:
        return self.context.pepper

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def keys(self) -> KeyRing:
        return self.context.keys

    @keys.setter
    def keys(self, keys: KeyRing) -> None:
        """Signing keys rotated by another process (``Runtime.reload_keys``)."""
        self.context.keys = keys

    @property
    def audit(self) -> AuditSink:
        return self.context.audit

    @audit.setter
    def audit(self, sink: AuditSink) -> None:
        self.context.audit = sink

    @property
    def client_cache(self) -> TTLCache[Client]:
        return self.context.client_cache

    @property
    def api_cache(self) -> TTLCache[Api]:
        return self.context.api_cache

    async def get_client(self, client_id: str, stores: Stores) -> Client | None:
        """A registered client, through the short-lived cache (``ServerContext.get_client``)."""
        return await self.context.get_client(client_id, stores)

    async def get_api(self, identifier: str, stores: Stores) -> Api | None:
        return await self.context.get_api(identifier, stores)

    async def apis_for(
        self, resource: str | None, client: Client, stores: Stores
    ) -> dict[str, Api]:
        """``ServerContext.apis_for``: the API a request names, if the client may use it."""
        return await self.context.apis_for(resource, client, stores)

    def now(self) -> int:
        return self.context.now()
