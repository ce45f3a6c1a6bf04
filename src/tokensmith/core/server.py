"""``AuthorizationServer``: a thin facade over the protocol's rooms, framework-free.

Routes hand it parsed input and the request's stores; it returns values (redirect locations,
token responses) or raises ``OAuthError``s. Time, keys, the pepper and the password hasher are
injected.

The token side lives below it and never calls back: ``core.context`` (policy, clock, keys,
pepper, audit, cached client/API lookups), ``core.issuance`` (``TokenIssuer``),
``core.token`` (``TokenEndpoint`` and the grant registry), ``core.introspection``,
``core.revocation`` and ``core.userinfo``. The facade builds them once and exposes them
(``token_endpoint``, ``introspection``, ``revocation``, ``userinfo``); the authorization
endpoint's and the browser interaction's methods are still here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import jwt

from tokensmith.core import authorize as authz
from tokensmith.core import id_token
from tokensmith.core.audit import AuditSink, discard
from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import Clock
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import (
    ConsentRequired,
    InvalidRequest,
    LoginRequired,
    OAuthError,
)
from tokensmith.core.introspection import IntrospectionEndpoint
from tokensmith.core.issuance import TokenIssuer
from tokensmith.core.keys import KeyRing
from tokensmith.core.login import PasswordLogin
from tokensmith.core.models import (
    Api,
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    Interaction,
    Session,
    User,
)
from tokensmith.core.params import parse_query
from tokensmith.core.passwords import Passwords
from tokensmith.core.policy import ServerPolicy
from tokensmith.core.ports import Stores
from tokensmith.core.revocation import RevocationEndpoint
from tokensmith.core.secrets import (
    CODE_PREFIX,
    INTERACTION_PREFIX,
    digest,
    equals,
    new_id,
    new_secret,
)
from tokensmith.core.token import GrantRegistry, TokenEndpoint, default_grants
from tokensmith.core.userinfo import UserInfoEndpoint


@dataclass(frozen=True, slots=True)
class AuthorizeOutcome:
    """Where the browser goes next: back to the client, or to the login or consent page."""

    kind: Literal["redirect", "login", "consent"]
    location: str | None = None
    interaction_id: str | None = None


def _to_client(request: AuthorizationRequest, error: OAuthError) -> authz.RedirectError:
    """An error for the client's (validated) redirect URI, with the request's state."""
    return authz.RedirectError(error, redirect_uri=request.redirect_uri, state=request.state)


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
    ) -> None:
        self.passwords = passwords
        self.context = ServerContext(
            policy=policy, clock=clock, keys=keys, pepper=pepper, audit=audit
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

    # -- the context, for the authorization endpoint's methods and the browser routes -------

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

    # -- authorization endpoint -----------------------------------------------------------

    async def authorize(
        self,
        raw_query: bytes | str,
        stores: Stores,
        *,
        session: Session | None,
        browser_digest: str,
    ) -> AuthorizeOutcome:
        """Validate an authorization request and decide the next step.

        Raises ``AuthorizationPageError`` (show a page) or ``authorize.RedirectError`` (send
        the error to the client).
        """
        params, duplicates = parse_query(raw_query, max_value_length=self.policy.max_param_length)
        client_id = params.get("client_id")
        client = await self.get_client(client_id, stores) if client_id else None
        target = authz.check_client_and_redirect(params, duplicates, client)
        apis = await self.apis_for(params.get("resource"), target.client, stores)
        request = authz.validate(params, duplicates, target, apis)
        hint = params.get("id_token_hint")
        if hint is not None:
            request = self._with_hint(request, hint)
        return await self.proceed(
            request, stores, session=session, browser_digest=browser_digest, interaction=None
        )

    def _with_hint(self, request: AuthorizationRequest, hint: str) -> AuthorizationRequest:
        """Verify ``id_token_hint`` (OpenID Connect Core §3.1.2.1): one of our ID tokens,
        expired or not; the user it names must be the one logged in."""
        try:
            claims = id_token.verify_hint(self.keys, hint, issuer=self.issuer)
        except jwt.PyJWTError:
            raise _to_client(
                request, InvalidRequest("id_token_hint is not an ID token issued by this server")
            ) from None
        return dataclasses.replace(request, hint_subject=str(claims["sub"]))

    async def proceed(
        self,
        request: AuthorizationRequest,
        stores: Stores,
        *,
        session: Session | None,
        browser_digest: str,
        interaction: Interaction | None,
        consent_given: bool = False,
    ) -> AuthorizeOutcome:
        """Decide login, consent or code for a validated request."""
        now = self.now()
        user = await self._session_user(request, session, stores, interaction, now)
        client = await self.get_client(request.client_id, stores)
        if client is None:
            raise _to_client(request, InvalidRequest("the client was removed"))
        if user is None or session is None:
            if "none" in request.prompt:
                raise _to_client(request, LoginRequired("the user is not logged in"))
            return await self._interaction("login", request, stores, browser_digest, interaction)
        if await self.needs_consent(client, user, request, stores, consent_given=consent_given):
            if "none" in request.prompt:
                raise _to_client(
                    request, ConsentRequired("the user has not consented to this client")
                )
            return await self._interaction("consent", request, stores, browser_digest, interaction)
        location = await self.issue_code(request, user, session, stores)
        if interaction is not None:
            await stores.interactions.delete(interaction.id)
        return AuthorizeOutcome("redirect", location=location)

    async def _session_user(
        self,
        request: AuthorizationRequest,
        session: Session | None,
        stores: Stores,
        interaction: Interaction | None,
        now: int,
    ) -> User | None:
        if session is None:
            return None
        if "login" in request.prompt and (
            interaction is None or session.auth_time < interaction.created_at
        ):
            return None
        if request.max_age is not None and session.auth_time + request.max_age < now:
            return None
        if request.hint_subject is not None and request.hint_subject != session.user_id:
            return None
        user = await stores.users.get(session.user_id)
        if user is None or user.disabled:
            return None
        return user

    async def needs_consent(
        self,
        client: Client,
        user: User,
        request: AuthorizationRequest,
        stores: Stores,
        *,
        consent_given: bool = False,
    ) -> bool:
        if client.first_party:
            return False
        if consent_given:
            return False
        if "consent" in request.prompt:
            return True
        # consent is per client, API and scope: docs:read allowed for one API is not allowed
        # for another API that defines a scope of the same name
        granted = await stores.consents.granted_scopes(user.id, client.client_id, request.audience)
        return not set(request.scopes) <= granted

    async def _interaction(
        self,
        kind: Literal["login", "consent"],
        request: AuthorizationRequest,
        stores: Stores,
        browser_digest: str,
        interaction: Interaction | None,
    ) -> AuthorizeOutcome:
        if interaction is None:
            now = self.now()
            interaction = Interaction(
                id=new_secret(INTERACTION_PREFIX, nbytes=24),
                browser_digest=browser_digest,
                request=request,
                created_at=now,
                expires_at=now + self.policy.interaction_ttl,
            )
            await stores.interactions.create(interaction)
        return AuthorizeOutcome(kind, interaction_id=interaction.id)

    async def issue_code(
        self,
        request: AuthorizationRequest,
        user: User,
        session: Session,
        stores: Stores,
    ) -> str:
        """Store a new authorization code and return the redirect URI that carries it."""
        now = self.now()
        value = new_secret(CODE_PREFIX)
        await stores.codes.create(
            AuthorizationCode(
                digest=digest(value, self.pepper),
                client_id=request.client_id,
                user_id=user.id,
                redirect_uri=request.redirect_uri,
                redirect_uri_sent=request.redirect_uri_sent,
                scopes=request.scopes,
                audience=request.audience,
                code_challenge=request.code_challenge,
                nonce=request.nonce,
                auth_time=session.auth_time,
                session_id=session.digest,
                grant_id=new_id(),
                expires_at=now + self.policy.authorization_code_ttl,
            )
        )
        return authz.redirect_url(
            request.redirect_uri, {"code": value, "state": request.state, "iss": self.issuer}
        )

    async def load_interaction(
        self, interaction_id: str, browser_digest: str, stores: Stores
    ) -> Interaction | None:
        """The pending interaction, if it exists, is unexpired and belongs to this browser."""
        interaction = await stores.interactions.get(interaction_id, self.now())
        if interaction is None:
            return None
        if not equals(interaction.browser_digest, browser_digest):
            return None
        return interaction

    def denied_location(self, request: AuthorizationRequest) -> str:
        return authz.redirect_url(
            request.redirect_uri,
            {
                "error": "access_denied",
                "error_description": "the user denied the request",
                "state": request.state,
                "iss": self.issuer,
            },
        )

    # -- login -------------------------------------------------------------------------------

    def password_login(self) -> PasswordLogin:
        """The password login's steps (``core.login``): reserve the attempt on the throttling
        counters, verify the password off the event loop with no transaction held, conclude."""
        return PasswordLogin(passwords=self.passwords, clock=self.clock, audit=self.audit)
