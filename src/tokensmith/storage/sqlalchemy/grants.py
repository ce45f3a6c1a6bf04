"""Grants: what a user allowed a client in one authorization, the root every token of a
family hangs from; revoking one revokes the family."""

from __future__ import annotations

from sqlalchemy import RowMapping, select, update

from tokensmith.core.models import Grant
from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words


class SqlGrantStore(SqlStore):
    async def create(self, grant: Grant) -> None:
        inserted = await self._insert_new(
            t.grants,
            {
                "id": grant.id,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "scopes": join_words(grant.scopes),
                "audience": grant.audience,
                "auth_time": grant.auth_time,
                "created_at": grant.created_at,
                "revoked_at": grant.revoked_at,
                "session_id": grant.session_id,
                "amr": join_words(grant.amr),
            },
        )
        if not inserted:
            raise Conflict(f"grant {grant.id} exists")

    async def get(self, grant_id: str) -> Grant | None:
        row = await self._one(select(t.grants).where(t.grants.c.id == grant_id))
        return _grant(row) if row is not None else None

    async def list_for_user(self, user_id: str) -> list[Grant]:
        g = t.grants
        rows = await self._conn.execute(
            select(g).where(g.c.user_id == user_id).order_by(g.c.created_at, g.c.id)
        )
        return [_grant(r) for r in rows.mappings()]

    async def get_live(self, grant_id: str) -> Grant | None:
        g, u = t.grants, t.users
        row = await self._one(
            select(g)
            .join(u, u.c.id == g.c.user_id)
            .where(g.c.id == grant_id, g.c.revoked_at.is_(None), u.c.disabled.is_(False))
        )
        return _grant(row) if row is not None else None

    async def revoke(self, grant_id: str, now: int) -> bool:
        result = await self._conn.execute(
            update(t.grants)
            .where(t.grants.c.id == grant_id, t.grants.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def revoke_for_user(self, user_id: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g).where(g.c.user_id == user_id, g.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_client(self, user_id: str, client_id: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g)
            .where(g.c.user_id == user_id, g.c.client_id == client_id, g.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_session(self, session_id: str, now: int) -> int:
        g = t.grants
        rows = await self._conn.execute(
            select(g.c.id, g.c.scopes).where(g.c.session_id == session_id, g.c.revoked_at.is_(None))
        )
        ids = [r.id for r in rows if "offline_access" not in split_words(r.scopes)]
        if not ids:
            return 0
        result = await self._conn.execute(update(g).where(g.c.id.in_(ids)).values(revoked_at=now))
        return int(result.rowcount)

    async def revoke_for_audience(self, audience: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g)
            .where(g.c.audience == audience, g.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)


def _grant(row: RowMapping) -> Grant:
    return Grant(
        id=row["id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scopes=split_words(row["scopes"]),
        audience=row["audience"],
        auth_time=row["auth_time"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        session_id=row["session_id"],
        amr=split_words(row["amr"]),
    )
