"""``AuthorizationServer``: the protocol's entry points, framework-free.

Routes hand it parsed input and the request's stores; it returns values (token responses) or
raises ``OAuthError``s. The browser flows (authorize, login, consent, logout, account) live in
``core.authorize``, ``core.interaction``, ``core.logout`` and ``core.account``, which use its
lookups (``get_client``, ``get_api``, ``apis_for``, ``now``). Time, keys, the pepper and the
password hasher are injected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tokensmith.core import audit, client_assertion, id_token, jwt_access_token
from tokensmith.core.audit import AuditEvent, AuditSink, discard
from tokensmith.core.cache import TTLCache
from tokensmith.core.client_auth import ClientRateLimit, check_secret, extract_credentials
from tokensmith.core.clock import Clock
from tokensmith.core.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidTarget,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.core.grants import GrantHandler
from tokensmith.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.core.grants.client_credentials import ClientCredentialsGrant
from tokensmith.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.core.keys import KeyRing
from tokensmith.core.models import (
    GRANT_REFRESH_TOKEN,
    AccessTokenRecord,
    Api,
    Client,
    Grant,
    RefreshToken,
    TokenResponse,
)
from tokensmith.core.passwords import Passwords
from tokensmith.core.policy import ServerPolicy
from tokensmith.core.ports import Conflict, Stores
from tokensmith.core.secrets import (
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    digest,
    new_id,
    new_secret,
)

REFUSED_GRANTS = frozenset({"password", "implicit"})


def default_grants() -> dict[str, GrantHandler]:
    handlers: list[GrantHandler] = [
        AuthorizationCodeGrant(),
        ClientCredentialsGrant(),
        RefreshTokenGrant(),
    ]
    return {h.grant_type: h for h in handlers}


class AuthorizationServer:
    def __init__(
        self,
        *,
        policy: ServerPolicy,
        keys: KeyRing,
        pepper: bytes,
        passwords: Passwords,
        clock: Clock,
        grants: Mapping[str, GrantHandler] | None = None,
        audit: AuditSink = discard,
    ) -> None:
        self.policy = policy
        self.issuer = policy.issuer
        self.keys = keys
        self.pepper = pepper
        self.passwords = passwords
        self.clock = clock
        self.grants = dict(grants if grants is not None else default_grants())
        self.audit = audit
        self.client_cache: TTLCache[Client] = TTLCache(ttl=policy.client_cache_ttl, clock=clock)
        self.api_cache: TTLCache[Api] = TTLCache(ttl=policy.client_cache_ttl, clock=clock)

    async def get_client(self, client_id: str, stores: Stores) -> Client | None:
        """A registered client, through the short-lived cache."""
        return await self.client_cache.get(client_id, lambda: stores.clients.get(client_id))

    async def get_api(self, identifier: str, stores: Stores) -> Api | None:
        return await self.api_cache.get(identifier, lambda: stores.apis.get(identifier))

    def now(self) -> int:
        return int(self.clock())

    # -- lookups shared with the browser flows (core.authorize, core.interaction) ---------

    async def apis_for(
        self, resource: str | None, client: Client, stores: Stores
    ) -> dict[str, Api]:
        """The registered API a request names (``resource``, or the client's default API), if
        the client may use it: ``authorize.resolve_audience`` then decides, and refuses a
        resource outside the client's APIs with ``invalid_target`` (RFC 8707 §2). An API the
        client may not use is not even looked up."""
        identifier = resource or client.default_api
        if identifier is None or not client.may_use(identifier):
            return {}
        api = await self.get_api(identifier, stores)
        return {api.identifier: api} if api else {}

    async def check_token_audience(
        self, client: Client, audience: str, resource: str | None, stores: Stores
    ) -> None:
        """At the token endpoint, for tokens of an existing grant or code: a ``resource`` sent
        must be the grant's audience, and that audience must still be one of the client's APIs
        and registered; otherwise ``invalid_target`` (RFC 8707 §2.2)."""
        if resource is not None and resource != audience:
            raise InvalidTarget("the resource is not the one this grant was issued for")
        if audience == "":
            return
        if not client.may_use(audience) or await self.get_api(audience, stores) is None:
            raise InvalidTarget("this client may no longer request tokens for this resource")

    # -- token endpoint ----------------------------------------------------------------------

    async def token(
        self,
        params: dict[str, str],
        authorization: str | None,
        stores: Stores,
        *,
        limit: ClientRateLimit | None,
    ) -> TokenResponse:
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        handler = self.grants.get(grant_type)
        if handler is None:
            if grant_type in REFUSED_GRANTS:
                raise UnsupportedGrantType(f"the {grant_type} grant is not supported (OAuth 2.1)")
            raise UnsupportedGrantType("unsupported grant_type")
        client = await self.authenticate_client(params, authorization, stores, limit=limit)
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use the {grant_type} grant")
        response = await handler.handle(self, client, params, stores)
        event = audit.TOKEN_REFRESHED if grant_type == GRANT_REFRESH_TOKEN else audit.TOKEN_ISSUED
        self.audit(
            AuditEvent(
                event, self.now(), client_id=client.client_id, detail={"grant_type": grant_type}
            )
        )
        return response

    async def authenticate_client(
        self,
        params: dict[str, str],
        authorization: str | None,
        stores: Stores,
        *,
        limit: ClientRateLimit | None,
    ) -> Client:
        """Authenticate the client of a token, revocation or introspection request, then count
        the request with ``limit``: against the authenticated client, or, when authentication
        fails, against the caller (a failure past the limit is answered ``SlowDown``). ``limit`` has
        no default so that no endpoint forgets it; ``None`` means no limit applies."""
        if limit is None:
            return await self._verify_client(params, authorization, stores)
        try:
            client = await self._verify_client(params, authorization, stores)
        except (InvalidClient, InvalidRequest):
            await limit.failed()
            raise
        await limit.authenticated(client)
        return client

    async def _verify_client(
        self, params: dict[str, str], authorization: str | None, stores: Stores
    ) -> Client:
        creds = extract_credentials(params, authorization)
        if creds.assertion is not None:
            client_id = creds.client_id or client_assertion.unverified_subject(creds.assertion)
            client = await self.get_client(client_id, stores)
            if client is None or client.token_endpoint_auth_method != "private_key_jwt":
                raise InvalidClient("client authentication failed")
            now = self.now()
            verified = client_assertion.verify(
                creds.assertion,
                client,
                audiences=(self.policy.endpoints.token, self.issuer),
                now=now,
            )
            if not await stores.assertion_jtis.use(
                client.client_id, verified.jti, verified.expires_at
            ):
                raise InvalidClient("the client assertion was used before (jti replay)")
            return client
        client = await self.get_client(creds.client_id, stores) if creds.client_id else None
        return check_secret(client, creds, self.pepper)

    async def revoke_family(
        self,
        stores: Stores,
        grant_id: str,
        *,
        event: str,
        client_id: str,
        user_id: str | None = None,
        tombstone: Grant | None = None,
    ) -> None:
        """Revoke a grant (every token issued from it) because of a detected attack, record
        why, and commit although the request that found it fails.

        ``tombstone``: the grant as it will be stored, when it may not be stored yet (a code
        replayed while its first redemption is still running, with codes in Redis): it is then
        stored revoked, and the first redemption's insert fails instead of issuing live tokens.
        """
        now = self.now()
        if not await stores.grants.revoke(grant_id, now) and tombstone is not None:
            try:
                await stores.grants.create(dataclasses.replace(tombstone, revoked_at=now))
            except Conflict:  # the first redemption stored it meanwhile
                await stores.grants.revoke(grant_id, now)
        self.audit(
            AuditEvent(
                event, now, client_id=client_id, user_id=user_id, detail={"grant_id": grant_id}
            )
        )
        await stores.commit()

    # -- issuing -----------------------------------------------------------------------------

    async def issue_access_token(
        self,
        client: Client,
        *,
        subject: str,
        scopes: tuple[str, ...],
        audience: str,
        stores: Stores,
        auth_time: int | None = None,
        grant_id: str | None = None,
    ) -> tuple[str, int]:
        """A JWT (RFC 9068) or opaque access token; returns ``(token, expires_in)``.

        Opaque tokens and JWTs of user grants are recorded, so that revocation and
        introspection find them; client-credentials JWTs are not (the fast path).
        """
        now = self.now()
        ttl = client.access_token_ttl or self.policy.access_token_ttl
        audience = audience or self.issuer
        if client.access_token_format == "opaque":
            token = new_secret(ACCESS_TOKEN_PREFIX)
            jti, token_digest = new_id(), digest(token, self.pepper)
        else:
            token, jti = jwt_access_token.mint(
                self.keys.signing_key(self.policy.signing_alg, now),
                issuer=self.issuer,
                subject=subject,
                audience=audience,
                client_id=client.client_id,
                scopes=scopes,
                now=now,
                ttl=ttl,
                auth_time=auth_time,
            )
            token_digest = None
            if grant_id is None:
                return token, ttl
        await stores.access_tokens.record(
            AccessTokenRecord(
                jti=jti,
                digest=token_digest,
                grant_id=grant_id,
                client_id=client.client_id,
                subject=subject,
                scopes=scopes,
                audience=audience,
                issued_at=now,
                expires_at=now + ttl,
            )
        )
        return token, ttl

    async def issue_refresh_token(
        self, client: Client, grant: Grant, stores: Stores, *, absolute_expires_at: int | None
    ) -> str:
        now = self.now()
        s = self.policy
        # OAuth 2.1 §4.3.1: tokens of clients that cannot authenticate live shorter by default
        public = not client.is_confidential
        default_idle = s.public_refresh_token_idle_ttl if public else s.refresh_token_idle_ttl
        idle = client.refresh_token_idle_ttl or default_idle
        if absolute_expires_at is None:
            default_absolute = (
                s.public_refresh_token_absolute_ttl if public else s.refresh_token_absolute_ttl
            )
            absolute_expires_at = now + (client.refresh_token_absolute_ttl or default_absolute)
        value = new_secret(REFRESH_TOKEN_PREFIX)
        await stores.refresh_tokens.create(
            RefreshToken(
                digest=digest(value, self.pepper),
                grant_id=grant.id,
                client_id=client.client_id,
                issued_at=now,
                expires_at=min(now + idle, absolute_expires_at),
                absolute_expires_at=absolute_expires_at,
            )
        )
        return value

    def grant_gets_refresh_token(self, client: Client, grant: Grant) -> bool:
        """Refresh tokens for clients allowed the grant; for OpenID requests only with
        ``offline_access`` (OpenID Connect Core §11)."""
        if GRANT_REFRESH_TOKEN not in client.grant_types:
            return False
        return "openid" not in grant.scopes or "offline_access" in grant.scopes

    async def issue_for_grant(
        self,
        client: Client,
        grant: Grant,
        stores: Stores,
        *,
        scopes: tuple[str, ...] | None = None,
        nonce: str | None = None,
        with_refresh_token: bool | None = None,
        absolute_expires_at: int | None = None,
    ) -> TokenResponse:
        """The tokens of a user grant: an access token recorded under the grant and, when the
        client may refresh, a new refresh token of the same family."""
        scopes = scopes if scopes is not None else grant.scopes
        token, ttl = await self.issue_access_token(
            client,
            subject=grant.user_id,
            scopes=scopes,
            audience=grant.audience,
            stores=stores,
            auth_time=grant.auth_time,
            grant_id=grant.id,
        )
        if with_refresh_token is None:
            with_refresh_token = self.grant_gets_refresh_token(client, grant)
        refresh = (
            await self.issue_refresh_token(
                client, grant, stores, absolute_expires_at=absolute_expires_at
            )
            if with_refresh_token
            else None
        )
        id_tok = None
        if "openid" in scopes:  # a refresh narrowed to non-OpenID scopes gets no ID token
            id_tok = self.mint_id_token(client, grant, access_token=token, nonce=nonce)
        return TokenResponse(
            access_token=token,
            expires_in=ttl,
            scopes=scopes,
            refresh_token=refresh,
            id_token=id_tok,
        )

    def mint_id_token(
        self, client: Client, grant: Grant, *, access_token: str, nonce: str | None
    ) -> str:
        now = self.now()
        return id_token.mint(
            self.keys.signing_key(client.id_token_signed_response_alg, now),
            issuer=self.issuer,
            subject=grant.user_id,
            client_id=client.client_id,
            now=now,
            ttl=self.policy.id_token_ttl,
            auth_time=grant.auth_time,
            nonce=nonce,
            access_token=access_token,
            sid=id_token.session_id(grant.session_id) if grant.session_id else None,
        )
