"""Access-token records with the JWT deny-list, and refresh tokens (rotated atomically:
one ``UPDATE ... WHERE rotated_at IS NULL RETURNING``, RFC 9700 §4.14.2)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.models import AccessTokenRecord, RefreshToken
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words


class DenyList(Protocol):
    """Where revoked JWT ``jti``s live instead of ``ts_revoked_jtis`` (Redis, when configured)."""

    async def deny(self, jti: str, expires_at: int) -> None: ...
    async def is_denied(self, jti: str) -> bool: ...


class SqlAccessTokenStore(SqlStore):
    __slots__ = ("_denylist",)

    def __init__(self, conn: AsyncConnection, denylist: DenyList | None = None) -> None:
        super().__init__(conn)
        self._denylist = denylist

    async def record(self, token: AccessTokenRecord) -> None:
        await self._conn.execute(
            insert(t.access_tokens).values(
                jti=token.jti,
                digest=token.digest,
                grant_id=token.grant_id,
                client_id=token.client_id,
                subject=token.subject,
                scopes=join_words(token.scopes),
                audience=token.audience,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
            )
        )

    async def get(self, jti: str) -> AccessTokenRecord | None:
        a = t.access_tokens
        row = await self._one(select(a).where(a.c.jti == jti))
        return _access_token(row) if row else None

    async def get_by_digest(self, digest: str) -> AccessTokenRecord | None:
        a = t.access_tokens
        row = await self._one(select(a).where(a.c.digest == digest))
        return _access_token(row) if row else None

    async def revoke(self, jti: str, now: int) -> bool:
        a = t.access_tokens
        result = await self._conn.execute(
            update(a).where(a.c.jti == jti, a.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def revoke_for_audience(self, audience: str, now: int) -> int:
        a = t.access_tokens
        result = await self._conn.execute(
            update(a)
            .where(a.c.audience == audience, a.c.revoked_at.is_(None), a.c.expires_at > now)
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    async def deny_jti(self, jti: str, expires_at: int) -> None:
        if self._denylist is not None:
            await self._denylist.deny(jti, expires_at)
            return
        r = t.revoked_jtis
        exists = await self._one(select(r.c.jti).where(r.c.jti == jti))
        if exists is None:
            await self._conn.execute(insert(r).values(jti=jti, expires_at=expires_at))

    async def is_denied(self, jti: str) -> bool:
        if self._denylist is not None:
            return await self._denylist.is_denied(jti)
        r = t.revoked_jtis
        return await self._one(select(r.c.jti).where(r.c.jti == jti)) is not None


def _access_token(row: RowMapping) -> AccessTokenRecord:
    return AccessTokenRecord(
        jti=row["jti"],
        digest=row["digest"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        subject=row["subject"],
        scopes=split_words(row["scopes"]),
        audience=row["audience"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class SqlRefreshTokenStore(SqlStore):
    async def create(self, token: RefreshToken) -> None:
        await self._conn.execute(
            insert(t.refresh_tokens).values(
                digest=token.digest,
                grant_id=token.grant_id,
                client_id=token.client_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                absolute_expires_at=token.absolute_expires_at,
                rotated_at=None,
            )
        )

    async def rotate(self, digest: str, now: int, *, client_id: str) -> RefreshToken | None:
        r = t.refresh_tokens
        row = await self._one(
            update(r)
            .where(r.c.digest == digest, r.c.rotated_at.is_(None), r.c.client_id == client_id)
            .values(rotated_at=now)
            .returning(*r.c)
        )
        return _refresh_token(row) if row else None

    async def get(self, digest: str) -> RefreshToken | None:
        r = t.refresh_tokens
        row = await self._one(select(r).where(r.c.digest == digest))
        return _refresh_token(row) if row else None


def _refresh_token(row: RowMapping) -> RefreshToken:
    return RefreshToken(
        digest=row["digest"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        absolute_expires_at=row["absolute_expires_at"],
        rotated_at=row["rotated_at"],
    )
