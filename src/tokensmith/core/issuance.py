"""``TokenIssuer``: the one place tokens are made (access, refresh and ID tokens) and grant
families are revoked. Grants and endpoints call it; it calls nothing above it.

- Access tokens are JWTs (RFC 9068) or opaque; opaque tokens and JWTs of user grants are
  recorded so that revocation and introspection find them. Client-credentials JWTs are not:
  that path makes no database round-trip.
- Refresh tokens (RFC 6749 §6) have an idle and an absolute lifetime, shorter by default for
  public clients (OAuth 2.1 §4.3.1). A grant gets one when its client is allowed the
  refresh-token grant and, for OpenID requests, only with ``offline_access`` (OpenID Connect
  Core §11).
- ID tokens (OpenID Connect Core §2) carry ``at_hash``, ``nonce`` and ``sid`` when there is one.
- The rows of a user grant's issuance (the grant itself when a code is redeemed, the
  access-token record, the refresh token) are handed to the store at once
  (``GrantStore.issue``: one statement on PostgreSQL).
- ``revoke_family`` revokes a grant because of a detected attack (RFC 9700 §4.14.2, RFC 6749
  §4.1.2) and commits although the request that found it fails.
"""

from __future__ import annotations

import dataclasses

from tokensmith.core import id_token, jwt_access_token, mfa
from tokensmith.core.audit import AuditEvent
from tokensmith.core.context import ServerContext
from tokensmith.core.models import (
    GRANT_REFRESH_TOKEN,
    AccessTokenRecord,
    Client,
    Grant,
    RefreshToken,
    TokenResponse,
)
from tokensmith.core.ports import Conflict, Stores
from tokensmith.core.secrets import (
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    digest,
    new_id,
    new_secret,
)


def gets_refresh_token(client: Client, grant: Grant) -> bool:
    """Refresh tokens for clients allowed the grant; for OpenID requests only with
    ``offline_access`` (OpenID Connect Core §11)."""
    if GRANT_REFRESH_TOKEN not in client.grant_types:
        return False
    return "openid" not in grant.scopes or "offline_access" in grant.scopes


class TokenIssuer:
    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def access_token(
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
        """:meth:`new_access_token` with its record stored: ``(token, expires_in)``."""
        token, ttl, record = self.new_access_token(
            client,
            subject=subject,
            scopes=scopes,
            audience=audience,
            auth_time=auth_time,
            grant_id=grant_id,
        )
        if record is not None:
            await stores.access_tokens.record(record)
        return token, ttl

    def new_access_token(
        self,
        client: Client,
        *,
        subject: str,
        scopes: tuple[str, ...],
        audience: str,
        auth_time: int | None = None,
        grant_id: str | None = None,
    ) -> tuple[str, int, AccessTokenRecord | None]:
        """A JWT (RFC 9068) or opaque access token: the token, its lifetime (``expires_in``)
        and the record the caller stores (``None``: a client-credentials JWT, which is not
        recorded; the fast path, which touches no store and awaits nothing).

        Opaque tokens and JWTs of user grants are recorded, so that revocation and
        introspection find them."""
        ctx = self.context
        now = ctx.now()
        ttl = client.access_token_ttl or ctx.policy.access_token_ttl
        audience = audience or ctx.issuer
        if client.access_token_format == "opaque":
            token = new_secret(ACCESS_TOKEN_PREFIX)
            jti, token_digest = new_id(), digest(token, ctx.pepper)
        else:
            token, jti = jwt_access_token.mint(
                ctx.keys.signing_key(ctx.policy.signing_alg, now),
                issuer=ctx.issuer,
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
                return token, ttl, None
        record = AccessTokenRecord(
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
        return token, ttl, record

    def refresh_token(
        self, client: Client, grant: Grant, *, absolute_expires_at: int | None
    ) -> tuple[str, RefreshToken]:
        """A new refresh token of ``grant``'s family and its row to store (by digest);
        ``absolute_expires_at`` is kept across rotations (``None``: a new family starts its
        absolute lifetime now)."""
        now = self.context.now()
        s = self.context.policy
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
        row = RefreshToken(
            digest=digest(value, self.context.pepper),
            grant_id=grant.id,
            client_id=client.client_id,
            issued_at=now,
            expires_at=min(now + idle, absolute_expires_at),
            absolute_expires_at=absolute_expires_at,
        )
        return value, row

    def id_token(
        self, client: Client, grant: Grant, *, access_token: str, nonce: str | None
    ) -> str:
        ctx = self.context
        now = ctx.now()
        return id_token.mint(
            ctx.keys.signing_key(client.id_token_signed_response_alg, now),
            issuer=ctx.issuer,
            subject=grant.user_id,
            client_id=client.client_id,
            now=now,
            ttl=ctx.policy.id_token_ttl,
            auth_time=grant.auth_time,
            nonce=nonce,
            access_token=access_token,
            sid=id_token.session_id(grant.session_id) if grant.session_id else None,
            amr=grant.amr,
            extra={"acr": mfa.acr_for(grant.amr)},
        )

    async def for_grant(
        self,
        client: Client,
        grant: Grant,
        stores: Stores,
        *,
        new_grant: bool = False,
        scopes: tuple[str, ...] | None = None,
        nonce: str | None = None,
        with_refresh_token: bool | None = None,
        absolute_expires_at: int | None = None,
        security_stamp: int | None = None,
    ) -> TokenResponse:
        """The tokens of a user grant: an access token recorded under the grant and, when the
        client may refresh, a new refresh token of the same family.

        Every row is written by one ``GrantStore.issue`` call (one statement on PostgreSQL):
        the grant itself too when ``new_grant`` (a code's redemption), which is left as it is
        when it exists already: a replay of the code, seen while this redemption ran (codes in
        Redis), may have stored it revoked, and the tokens are then born revoked, exactly as
        if the replay had come a moment later.

        ``security_stamp``: the stamp a code recorded; nothing is written and ``StaleStamp``
        raised unless it is still the user's (held until the transaction ends)."""
        scopes = scopes if scopes is not None else grant.scopes
        token, ttl, record = self.new_access_token(
            client,
            subject=grant.user_id,
            scopes=scopes,
            audience=grant.audience,
            auth_time=grant.auth_time,
            grant_id=grant.id,
        )
        if with_refresh_token is None:
            with_refresh_token = gets_refresh_token(client, grant)
        refresh, refresh_row = (
            self.refresh_token(client, grant, absolute_expires_at=absolute_expires_at)
            if with_refresh_token
            else (None, None)
        )
        await stores.grants.issue(
            grant if new_grant else None,
            access_token=record,
            refresh_token=refresh_row,
            stamp=(grant.user_id, security_stamp) if security_stamp is not None else None,
        )
        id_tok = None
        if "openid" in scopes:  # a refresh narrowed to non-OpenID scopes gets no ID token
            id_tok = self.id_token(client, grant, access_token=token, nonce=nonce)
        return TokenResponse(
            access_token=token,
            expires_in=ttl,
            scopes=scopes,
            refresh_token=refresh,
            id_token=id_tok,
        )

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
        now = self.context.now()
        if not await stores.grants.revoke(grant_id, now) and tombstone is not None:
            try:
                await stores.grants.create(dataclasses.replace(tombstone, revoked_at=now))
            except Conflict:  # the first redemption stored it meanwhile
                await stores.grants.revoke(grant_id, now)
        self.context.emit(
            AuditEvent(
                event, now, client_id=client_id, user_id=user_id, detail={"grant_id": grant_id}
            )
        )
        await stores.commit()
