"""The login flow: start, callback, identity linking, logout. No web framework.

:class:`LoginFlow` turns a provider name and a callback's query parameters (plus the browser's
cookies) into an app session, and back. It asks three collaborators and decides nothing they
know: the :class:`~tokensmith.client.discovery.ProviderDirectory` (the providers, each answering
the :class:`~tokensmith.client.providers.Provider` protocol, with their metadata and keys), the
:class:`~tokensmith.client.sessions.AppSessions` (the app's own sessions) and the
:class:`~tokensmith.client.vault.UpstreamTokenVault` (the provider's tokens, sealed). The FastAPI
router in :mod:`tokensmith.client.router` only moves values between HTTP and these.

The order of the callback checks matters (RFC 9700 §4.7, §4.4, §4.5.3.2; OpenID Connect Core
§3.1.3.7): the transaction cookie for this ``state`` must exist in this browser and decrypt, the
transaction is consumed once (a replayed callback fails), the ``iss`` parameter is checked, then the
code is exchanged with the PKCE verifier, then the ID token (or GitHub profile) is verified - and
only then does the app hear about the user and a session exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tokensmith.client.config import ClientConfig
from tokensmith.client.crypto import CookieKeyRing
from tokensmith.client.discovery import ProviderDirectory
from tokensmith.client.errors import EmailNotVerified, InvalidIdToken, TransactionReplayed
from tokensmith.client.flow import (
    authorization_url,
    check_authorization_response,
    exchange_code,
    tokens_from_response,
)
from tokensmith.client.models import ExternalIdentity, FindOrCreateUser
from tokensmith.client.sessions import ActiveSession, AppSessions
from tokensmith.client.storage import IdentityStore, TransactionStore
from tokensmith.client.transaction import (
    check_state_param,
    is_safe_return_path,
    new_transaction,
    open_transaction,
    seal_transaction,
    transaction_cookie_name,
)
from tokensmith.client.vault import UpstreamTokenVault

__all__ = ["LoginFlow", "LoginResult", "LoginStart", "link_by_provider_subject"]

logger = logging.getLogger("tokensmith.client")


@dataclass(frozen=True, slots=True)
class LoginStart:
    url: str
    cookie_name: str
    cookie_value: str = field(repr=False)
    max_age: int


@dataclass(frozen=True, slots=True)
class LoginResult:
    user_id: str
    identity: ExternalIdentity
    session_cookie: str = field(repr=False)
    redirect_url: str


def link_by_provider_subject(store: IdentityStore) -> FindOrCreateUser:
    """The default hook: link by ``(provider, subject)`` only; a new identity is a new user.

    It never links on an e-mail address, verified or not: an app that wants to attach a new
    provider to an existing account should do so while that account is signed in.
    """

    async def find_or_create_user(identity: ExternalIdentity) -> str:
        user_id = await store.find_user_by_identity(identity.provider, identity.subject)
        if user_id is None:
            user_id = await store.create_user(email=identity.email, name=identity.name)
        await store.link_identity(user_id, identity)
        return user_id

    return find_or_create_user


class LoginFlow:
    """Sign-in and sign-out: builds nothing itself, composed by :class:`ClientAuth`."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        keys: CookieKeyRing,
        providers: ProviderDirectory,
        sessions: AppSessions,
        vault: UpstreamTokenVault,
        transactions: TransactionStore,
        find_or_create_user: FindOrCreateUser,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.keys = keys
        self.providers = providers
        self.sessions = sessions
        self.vault = vault
        self.transactions = transactions
        self.find_or_create_user = find_or_create_user
        self.clock = clock

    # login ------------------------------------------------------------------------------------
    async def start_login(self, name: str, *, return_to: str | None = None) -> LoginStart:
        provider = self.providers.provider(name)
        # issuer-pinned discovery before anything is sent
        metadata = await self.providers.metadata(name)
        path = return_to if return_to and is_safe_return_path(return_to) else None
        tx = new_transaction(
            name,
            oidc=provider.openid,
            return_to=path or self.config.post_login_path,
            now=self.clock(),
        )
        cookie_name = transaction_cookie_name(
            self.keys, tx.state, prefix=self.config.cookie_name_prefix
        )
        return LoginStart(
            url=authorization_url(
                provider, metadata, tx, redirect_uri=self.config.redirect_uri(name)
            ),
            cookie_name=cookie_name,
            cookie_value=seal_transaction(self.keys, tx, cookie_name),
            max_age=int(self.config.transaction_ttl),
        )

    def transaction_cookie_for(self, state: str | None) -> str | None:
        """The name of the transaction cookie a callback with this ``state`` must clear."""
        if not state or len(state) > 512:
            return None
        return transaction_cookie_name(self.keys, state, prefix=self.config.cookie_name_prefix)

    async def finish_login(
        self,
        name: str,
        params: Mapping[str, str],
        cookies: Mapping[str, str],
        *,
        previous_session: str | None = None,
    ) -> LoginResult:
        provider = self.providers.provider(name)
        now = self.clock()
        state = check_state_param(params.get("state"))
        cookie_name = transaction_cookie_name(
            self.keys, state, prefix=self.config.cookie_name_prefix
        )
        tx = open_transaction(
            self.keys,
            cookie_name=cookie_name,
            cookie_value=cookies.get(cookie_name),
            provider=name,
            state=state,
            now=now,
            ttl=self.config.transaction_ttl,
        )
        consumed = await self.transactions.consume_transaction(
            self.keys.digest("tx", state),
            expires_at=tx.created_at + self.config.transaction_ttl + 60,
            now=now,
        )
        if not consumed:
            raise TransactionReplayed("callback for an already used transaction")
        metadata = await self.providers.metadata(name)
        code = check_authorization_response(dict(params), metadata=metadata)
        body = await exchange_code(
            self.providers.http,
            provider,
            metadata,
            code=code,
            code_verifier=tx.code_verifier,
            redirect_uri=self.config.redirect_uri(name),
        )
        tokens = tokens_from_response(body, now=now)
        signed_in = await provider.identify(
            self.providers.http,
            name=name,
            metadata=metadata,
            token_response=body,
            tokens=tokens,
            nonce=tx.nonce,
            keys_for=self.providers.keys_for(name),
            now=now,
        )
        identity = signed_in.identity
        if self.config.require_verified_email and not identity.email_verified:
            raise EmailNotVerified(
                f"{name} subject {identity.subject}: no verified e-mail "
                f"({'unverified' if identity.email else 'no email claim'}). The provider must "
                "send email_verified=true: request the 'email' scope and have the address marked "
                "verified (tokensmith: --email-verified of `users create` or `users update`), or "
                "pass require_verified_email=False to ClientConfig"
            )
        user_id = await self.find_or_create_user(identity)
        if self.config.store_upstream_tokens:
            await self.vault.save(user_id, name, tokens)
        sid = identity.raw_claims.get("sid") if signed_in.id_token else None
        session_cookie = await self.sessions.rotate(
            previous_session,
            user_id,
            name,
            id_token=signed_in.id_token,
            now=now,
            subject=identity.subject,
            sid=sid if isinstance(sid, str) else None,
        )
        logger.info("login: provider=%s user=%s", name, user_id)
        return LoginResult(
            user_id=user_id,
            identity=identity,
            session_cookie=session_cookie,
            redirect_url=self.config.landing_url(tx.return_to),
        )

    # logout -----------------------------------------------------------------------------------
    async def logout(self, session: ActiveSession) -> str:
        """End the app session server-side; the URL to send the browser to.

        For an OpenID Connect provider with an ``end_session_endpoint`` that is the provider's
        logout (OpenID Connect RP-Initiated Logout 1.0 §2) with ``id_token_hint`` and
        ``post_logout_redirect_uri``; otherwise the app's post-logout page.
        """
        ended = await self.sessions.end(session)
        landing = self.config.landing_url(self.config.post_logout_path)
        if ended is None or not ended.has_id_token:
            return landing
        provider = self.config.providers.get(ended.provider)
        if provider is None or not provider.openid:
            return landing
        try:
            metadata = await self.providers.metadata(ended.provider)
        except Exception:  # the provider being down must not keep anyone signed in
            logger.warning("logout: provider %s metadata unavailable", ended.provider)
            return landing
        if ended.id_token is None or metadata.end_session_endpoint is None:
            return landing
        query = urlencode(
            {
                "id_token_hint": ended.id_token,
                "post_logout_redirect_uri": landing,
                "client_id": provider.client_id,
            }
        )
        return f"{metadata.end_session_endpoint}?{query}"

    async def backchannel_logout(self, name: str, logout_token: str | None) -> int:
        """OpenID Connect Back-Channel Logout 1.0 §2.6-2.8: end the sessions the token names.

        Raises :class:`InvalidIdToken` (the route answers 400) for anything not acceptable,
        including a replayed token (same ``jti``); returns how many sessions ended.
        """
        provider = self.providers.provider(name)
        if not provider.openid:
            raise InvalidIdToken(f"provider {name!r} has no back-channel logout")
        metadata = await self.providers.metadata(name)
        now = self.clock()
        request, remember_until = await provider.check_logout_token(
            logout_token or "",
            metadata=metadata,
            keys_for=self.providers.keys_for(name),
            now=now,
        )
        # §2.4 jti: remembered until the token could no longer pass validation, refused twice
        fresh = await self.transactions.consume_transaction(
            self.keys.digest("logout-jti", f"{name}|{request.jti}"),
            expires_at=remember_until,
            now=now,
        )
        if not fresh:
            raise InvalidIdToken("logout token replayed")
        ended = await self.sessions.end_provider_sessions(
            name, subject=request.subject, sid=request.sid
        )
        logger.info("back-channel logout: provider=%s sessions=%d", name, ended)
        return ended
