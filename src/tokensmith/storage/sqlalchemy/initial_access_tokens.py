"""Initial access tokens for dynamic client registration (RFC 7591 §3), by digest."""

from __future__ import annotations

from sqlalchemy import RowMapping, delete, insert, or_, select, update

from tokensmith.core.models import InitialAccessToken
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlInitialAccessTokenStore(SqlStore):
    async def create(self, token: InitialAccessToken) -> None:
        await self._conn.execute(
            insert(t.initial_access_tokens).values(
                digest=token.digest,
                created_at=token.created_at,
                expires_at=token.expires_at,
                uses_left=token.uses_left,
                note=token.note,
            )
        )

    async def use(self, digest: str, now: int) -> bool:
        c = t.initial_access_tokens.c
        live = (
            c.digest == digest,
            or_(c.expires_at.is_(None), c.expires_at > now),
        )
        # one statement each, so two registrations racing for the last use cannot both win
        limited = await self._conn.execute(
            update(t.initial_access_tokens)
            .where(*live, c.uses_left > 0)
            .values(uses_left=c.uses_left - 1)
        )
        if limited.rowcount:
            return True
        unlimited = await self._one(select(c.digest).where(*live, c.uses_left.is_(None)))
        return unlimited is not None

    async def list(self) -> list[InitialAccessToken]:
        rows = await self._conn.execute(
            select(t.initial_access_tokens).order_by(t.initial_access_tokens.c.created_at)
        )
        return [_token(r) for r in rows.mappings()]

    async def delete(self, digest: str) -> bool:
        result = await self._conn.execute(
            delete(t.initial_access_tokens).where(t.initial_access_tokens.c.digest == digest)
        )
        return bool(result.rowcount)


def _token(row: RowMapping) -> InitialAccessToken:
    return InitialAccessToken(
        digest=row["digest"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        uses_left=row["uses_left"],
        note=row["note"],
    )
