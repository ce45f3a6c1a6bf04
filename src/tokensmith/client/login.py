"""The login service: everything a login, a session and a logout need, without a web framework.

:class:`LoginService` turns a provider name and a callback's query parameters (plus the browser's
cookies) into an app session, and back. The FastAPI router in :mod:`tokensmith.client.router` only
moves values between HTTP and this class.

The order of the callback checks matters (RFC 9700 §4.7, §4.4, §4.5.3.2; OpenID Connect Core
§3.1.3.7): the transaction cookie for this ``state`` must exist in this browser and decrypt, the
transaction is consumed once (a replayed callback fails), the ``iss`` parameter is checked, then the
code is exchanged with the PKCE verifier, then the ID token (or GitHub profile) is verified - and
only then does the app hear about the user and a session exist.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import jwt

from tokensmith.client.config import ClientConfig
from tokensmith.client.crypto import KeyRing
from tokensmith.client.errors import (
    EmailNotVerified,
    InvalidIdToken,
    ProviderUnavailable,
    TransactionReplayed,
    UnknownProvider,
)
from tokensmith.client.flow import (
    ProviderMetadata,
    authorization_url,
    check_authorization_response,
    exchange_code,
    fetch_github_identity,
    fetch_metadata,
    fetch_userinfo,
    github_metadata,
    identity_from_claims,
    tokens_from_response,
)
from tokensmith.client.id_token import KeyLookup, allowed_id_token_algs, validate_id_token
from tokensmith.client.logout_token import validate_logout_token
from tokensmith.client.models import (
    ExternalIdentity,
    FindOrCreateUser,
    SessionRecord,
    UpstreamTokens,
)
from tokensmith.client.providers import GitHubProvider, OIDCProvider, Provider
from tokensmith.client.storage import ClientStore, IdentityStore
from tokensmith.client.transaction import (
    check_state_param,
    is_safe_return_path,
    new_transaction,
    open_transaction,
    seal_transaction,
    transaction_cookie_name,
)
from tokensmith.resource import IssuerUnavailableError, JWKSCache

__all__ = [
    "ActiveSession",
    "KeyResolver",
    "LoginResult",
    "LoginService",
    "LoginStart",
    "link_by_provider_subject",
]

logger = logging.getLogger("tokensmith.client")


class KeyResolver(Protocol):
    """What the toolkit needs of a JWKS cache (``tokensmith.resource.JWKSCache``)."""

    async def get_key(self, kid: str | None, alg: str) -> jwt.PyJWK: ...


JWKSFactory = Callable[[httpx.AsyncClient, str], KeyResolver]


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


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """The signed-in user of a request."""

    user_id: str
    provider: str
    expires_at: float
    csrf_token: str = field(repr=False)
    digest: str = field(repr=False)


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


class LoginService:
    def __init__(
        self,
        config: ClientConfig,
        *,
        store: ClientStore,
        http: httpx.AsyncClient,
        find_or_create_user: FindOrCreateUser | None = None,
        clock: Callable[[], float] = time.time,
        jwks_factory: JWKSFactory | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.http = http
        self.keys = KeyRing(config.secret_key)
        self.find_or_create_user = find_or_create_user or link_by_provider_subject(store)
        self.clock = clock
        self._jwks_factory = jwks_factory or self._default_jwks_factory
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        # negative cache: provider name -> (retry_at, detail); one entry per configured provider
        self._metadata_failures: dict[str, tuple[float, str]] = {}
        self._metadata_locks: dict[str, asyncio.Lock] = {}
        self._jwks: dict[str, KeyResolver] = {}
        self._refresh_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def refresh_lock(self, user_id: str, provider: str) -> asyncio.Lock:
        """One refresh at a time per user and provider (in this process): providers that rotate
        refresh tokens would otherwise see the second, concurrent refresh as a replay."""
        key = (user_id, provider)
        lock = self._refresh_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._refresh_locks[key] = lock
        return lock

    # providers --------------------------------------------------------------------------------
    def provider(self, name: str) -> Provider:
        provider = self.config.providers.get(name)
        if provider is None:
            raise UnknownProvider(f"no provider {name!r}")
        return provider

    async def metadata(self, name: str) -> ProviderMetadata:
        """The provider's metadata: GitHub's fixed endpoints, or issuer-pinned discovery cached
        for ``discovery_ttl``; a failure is remembered for ``discovery_failure_ttl`` (negative
        cache) so a provider that is down costs one outbound call per interval, not one per
        login or back-channel request."""
        provider = self.provider(name)
        if isinstance(provider, GitHubProvider):
            return github_metadata(provider)
        cached = self._metadata.get(name)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        # one discovery at a time per provider: concurrent requests share its outcome
        lock = self._metadata_locks.setdefault(name, asyncio.Lock())
        async with lock:
            now = self.clock()
            cached = self._metadata.get(name)
            if cached is not None and cached[0] > now:
                return cached[1]
            failed = self._metadata_failures.get(name)
            if failed is not None and failed[0] > now:
                raise ProviderUnavailable(
                    f"discovery failed recently, not retried yet: {failed[1]}"
                )
            try:
                metadata = await fetch_metadata(self.http, provider)
            except ProviderUnavailable as exc:
                self._metadata_failures[name] = (now + provider.discovery_failure_ttl, exc.detail)
                raise
            self._metadata_failures.pop(name, None)
            self._metadata[name] = (now + provider.discovery_ttl, metadata)
            return metadata

    def _default_jwks_factory(self, http: httpx.AsyncClient, jwks_uri: str) -> KeyResolver:
        """``tokensmith.resource.JWKSCache``: an unknown ``kid`` (key rotation) triggers at most
        one refetch per 30 s, on the same injected clock as the rest of the toolkit."""
        return JWKSCache(
            http, jwks_uri, min_refetch_interval=30.0, default_ttl=300.0, clock=self.clock
        )

    def _key_lookup(self, name: str, jwks_uri: str) -> KeyLookup:
        resolver = self._jwks.get(name)
        if resolver is None:
            resolver = self._jwks[name] = self._jwks_factory(self.http, jwks_uri)

        async def get_key(kid: str | None, alg: str) -> jwt.PyJWK:
            try:
                return await resolver.get_key(kid, alg)
            except IssuerUnavailableError as exc:
                raise ProviderUnavailable(f"JWKS unavailable: {exc.detail}") from exc
            except Exception as exc:  # unknown kid, unusable key, bad JWKS document
                raise InvalidIdToken(f"no usable key: {type(exc).__name__}: {exc}") from exc

        return get_key

    # login ------------------------------------------------------------------------------------
    async def start_login(self, name: str, *, return_to: str | None = None) -> LoginStart:
        provider = self.provider(name)
        metadata = await self.metadata(name)  # issuer-pinned discovery before anything is sent
        path = return_to if return_to and is_safe_return_path(return_to) else None
        tx = new_transaction(
            name,
            oidc=isinstance(provider, OIDCProvider),
            return_to=path or self.config.post_login_path,
            now=self.clock(),
        )
        cookie_name = transaction_cookie_name(self.keys, tx.state, secure=self.config.secure)
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
        return transaction_cookie_name(self.keys, state, secure=self.config.secure)

    async def finish_login(
        self,
        name: str,
        params: Mapping[str, str],
        cookies: Mapping[str, str],
        *,
        previous_session: str | None = None,
    ) -> LoginResult:
        provider = self.provider(name)
        now = self.clock()
        state = check_state_param(params.get("state"))
        cookie_name = transaction_cookie_name(self.keys, state, secure=self.config.secure)
        tx = open_transaction(
            self.keys,
            cookie_name=cookie_name,
            cookie_value=cookies.get(cookie_name),
            provider=name,
            state=state,
            now=now,
            ttl=self.config.transaction_ttl,
        )
        consumed = await self.store.consume_transaction(
            self.keys.digest("tx", state),
            expires_at=tx.created_at + self.config.transaction_ttl + 60,
            now=now,
        )
        if not consumed:
            raise TransactionReplayed("callback for an already used transaction")
        metadata = await self.metadata(name)
        code = check_authorization_response(dict(params), metadata=metadata)
        redirect_uri = self.config.redirect_uri(name)
        body = await exchange_code(
            self.http,
            provider,
            metadata,
            code=code,
            code_verifier=tx.code_verifier,
            redirect_uri=redirect_uri,
        )
        tokens = tokens_from_response(body, now=now)
        id_token: str | None = None
        if isinstance(provider, GitHubProvider):
            identity = await fetch_github_identity(
                self.http, provider, name=name, access_token=tokens.access_token
            )
        else:
            id_token = body.get("id_token") if isinstance(body.get("id_token"), str) else None
            if id_token is None or tx.nonce is None or metadata.jwks_uri is None:
                raise InvalidIdToken("token response without an id_token")
            claims = await validate_id_token(
                id_token,
                get_key=self._key_lookup(name, metadata.jwks_uri),
                issuer=metadata.issuer,
                client_id=provider.client_id,
                nonce=tx.nonce,
                allowed_algs=allowed_id_token_algs(
                    metadata.id_token_algs_advertised, provider.id_token_algs
                ),
                now=now,
                leeway=provider.clock_skew,
                max_age=provider.max_id_token_age,
                access_token=tokens.access_token,
            )
            userinfo: dict[str, Any] | None = None
            if "email" not in claims and metadata.userinfo_endpoint is not None:
                userinfo = await fetch_userinfo(self.http, provider, metadata, tokens.access_token)
            identity = identity_from_claims(
                claims, name=name, issuer=metadata.issuer, userinfo=userinfo
            )
        if self.config.require_verified_email and not identity.email_verified:
            raise EmailNotVerified(f"{name} subject {identity.subject}: no verified e-mail")
        user_id = await self.find_or_create_user(identity)
        if self.config.store_upstream_tokens:
            await self.save_upstream_tokens(user_id, name, tokens)
        if previous_session:
            await self.store.delete_session(self.keys.digest("session", previous_session))
        sid = identity.raw_claims.get("sid") if id_token else None
        session_cookie = await self._create_session(
            user_id,
            name,
            id_token,
            now,
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

    # sessions ---------------------------------------------------------------------------------
    async def _create_session(
        self,
        user_id: str,
        provider: str,
        id_token: str | None,
        now: float,
        *,
        subject: str | None,
        sid: str | None,
    ) -> str:
        raw = secrets.token_urlsafe(32)
        digest = self.keys.digest("session", raw)
        sealed_id_token = (
            self.keys.tokens.seal(id_token.encode(), b"id_token|" + digest.encode())
            if id_token
            else None
        )
        await self.store.create_session(
            digest,
            SessionRecord(
                user_id=user_id,
                provider=provider,
                created_at=now,
                expires_at=now + self.config.session_ttl,
                id_token=sealed_id_token,
                subject=subject,
                sid=sid,
            ),
        )
        return raw

    async def get_session(self, cookie_value: str | None) -> ActiveSession | None:
        if not cookie_value or len(cookie_value) > 256:
            return None
        digest = self.keys.digest("session", cookie_value)
        record = await self.store.get_session(digest)
        if record is None:
            return None
        if record.expires_at <= self.clock():
            await self.store.delete_session(digest)
            return None
        return ActiveSession(
            user_id=record.user_id,
            provider=record.provider,
            expires_at=record.expires_at,
            csrf_token=self.keys.csrf_token(digest),
            digest=digest,
        )

    def check_csrf(self, session: ActiveSession, token: str | None) -> bool:
        return bool(token) and secrets.compare_digest(
            session.csrf_token.encode(), (token or "").encode()
        )

    async def logout(self, session: ActiveSession) -> str:
        """End the app session server-side; the URL to send the browser to.

        For an OpenID Connect provider with an ``end_session_endpoint`` that is the provider's
        logout (OpenID Connect RP-Initiated Logout 1.0 §2) with ``id_token_hint`` and
        ``post_logout_redirect_uri``; otherwise the app's post-logout page.
        """
        record = await self.store.get_session(session.digest)
        await self.store.delete_session(session.digest)
        landing = self.config.landing_url(self.config.post_logout_path)
        if record is None or record.id_token is None:
            return landing
        provider = self.config.providers.get(record.provider)
        if not isinstance(provider, OIDCProvider):
            return landing
        raw = self.keys.tokens.open(record.id_token, b"id_token|" + session.digest.encode())
        try:
            metadata = await self.metadata(record.provider)
        except Exception:  # the provider being down must not keep anyone signed in
            logger.warning("logout: provider %s metadata unavailable", record.provider)
            return landing
        if raw is None or metadata.end_session_endpoint is None:
            return landing
        query = urlencode(
            {
                "id_token_hint": raw.decode(),
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
        provider = self.provider(name)
        if not isinstance(provider, OIDCProvider):
            raise InvalidIdToken(f"provider {name!r} has no back-channel logout")
        metadata = await self.metadata(name)
        if metadata.jwks_uri is None:
            raise InvalidIdToken("provider has no jwks_uri")
        now = self.clock()
        request = await validate_logout_token(
            logout_token or "",
            get_key=self._key_lookup(name, metadata.jwks_uri),
            issuer=metadata.issuer,
            client_id=provider.client_id,
            allowed_algs=allowed_id_token_algs(
                metadata.id_token_algs_advertised, provider.id_token_algs
            ),
            now=now,
            leeway=provider.clock_skew,
        )
        # §2.4 jti: remembered until the token could no longer pass validation, refused twice
        fresh = await self.store.consume_transaction(
            self.keys.digest("logout-jti", f"{name}|{request.jti}"),
            expires_at=request.exp + provider.clock_skew,
            now=now,
        )
        if not fresh:
            raise InvalidIdToken("logout token replayed")
        ended = await self.store.delete_provider_sessions(
            name, subject=request.subject, sid=request.sid
        )
        logger.info("back-channel logout: provider=%s sessions=%d", name, ended)
        return ended

    # upstream tokens --------------------------------------------------------------------------
    async def save_upstream_tokens(
        self, user_id: str, provider: str, tokens: UpstreamTokens
    ) -> None:
        data = json.dumps(
            {
                "a": tokens.access_token,
                "r": tokens.refresh_token,
                "e": tokens.expires_at,
                "s": tokens.scope,
            }
        ).encode()
        sealed = self.keys.tokens.seal(data, _token_aad(user_id, provider))
        await self.store.save_upstream_tokens(user_id, provider, sealed)

    async def load_upstream_tokens(self, user_id: str, provider: str) -> UpstreamTokens | None:
        record = await self.load_sealed_upstream_tokens(user_id, provider)
        return None if record is None else record[1]

    async def load_sealed_upstream_tokens(
        self, user_id: str, provider: str
    ) -> tuple[str, UpstreamTokens] | None:
        """The stored tokens together with their sealed form, which identifies this version of
        them (every seal has a fresh nonce) for a compare-and-delete."""
        sealed = await self.store.load_upstream_tokens(user_id, provider)
        if sealed is None:
            return None
        raw = self.keys.tokens.open(sealed, _token_aad(user_id, provider))
        if raw is None:
            logger.warning("upstream tokens of %s/%s do not decrypt", user_id, provider)
            return None
        data = json.loads(raw)
        return sealed, UpstreamTokens(
            access_token=data["a"],
            refresh_token=data["r"],
            expires_at=data["e"],
            scope=data["s"],
        )


def _token_aad(user_id: str, provider: str) -> bytes:
    return b"upstream|" + user_id.encode() + b"|" + provider.encode()
