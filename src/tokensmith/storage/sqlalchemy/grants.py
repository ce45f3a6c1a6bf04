"""Grants: what a user allowed a client in one authorization, the root every token of a
family hangs from; revoking one revokes the family.

``issue`` writes the rows of one issuance (a code's grant, the access-token record, the refresh
token). On PostgreSQL that is one statement, the other inserts in data-modifying CTEs (``WITH g
AS (INSERT INTO ts_grants ... ON CONFLICT (id) DO NOTHING), a AS (INSERT INTO ts_access_tokens
...) INSERT INTO ts_refresh_tokens ...``): one round-trip instead of three, each CTE run exactly
once, all or nothing like any statement. SQLite has no data-modifying CTEs: the same inserts one
after another, in the same transaction."""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, select, text, update

from tokensmith.core.models import AccessTokenRecord, Grant, RefreshToken
from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words
from tokensmith.storage.sqlalchemy.tokens import (
    access_token_params,
    grant_from_row,
    insert_sql,
    live_grant_select,
    refresh_token_params,
)

_GRANT_SQL = insert_sql(t.grants, "g_", on_conflict=" ON CONFLICT (id) DO NOTHING")
_INSERT_GRANT = text(_GRANT_SQL)
_ACCESS_SQL = insert_sql(t.access_tokens, "a_")
_REFRESH_SQL = insert_sql(t.refresh_tokens, "r_")


@cache
def _issue_statements(grant: bool, access: bool, refresh: bool, *, one: bool) -> list[TextClause]:
    """The inserts of an issuance with these rows: ``one``, a single statement whose other
    inserts are data-modifying CTEs (PostgreSQL); else one statement each."""
    inserts = [
        sql
        for sql, given in ((_GRANT_SQL, grant), (_ACCESS_SQL, access), (_REFRESH_SQL, refresh))
        if given
    ]
    if not one or len(inserts) < 2:
        return [text(sql) for sql in inserts]
    *ctes, last = inserts
    names = ("w1", "w2")
    with_ = ", ".join(f"{name} AS ({sql})" for name, sql in zip(names, ctes, strict=False))
    return [text(f"WITH {with_} {last}")]


def grant_params(grant: Grant) -> dict[str, object]:
    return {
        "g_id": grant.id,
        "g_client_id": grant.client_id,
        "g_user_id": grant.user_id,
        "g_scopes": join_words(grant.scopes),
        "g_audience": grant.audience,
        "g_auth_time": grant.auth_time,
        "g_created_at": grant.created_at,
        "g_revoked_at": grant.revoked_at,
        "g_session_id": grant.session_id,
        "g_amr": join_words(grant.amr),
    }


class SqlGrantStore(SqlStore):
    async def create(self, grant: Grant) -> None:
        result = await self._conn.execute(_INSERT_GRANT, grant_params(grant))
        if not result.rowcount:
            raise Conflict(f"grant {grant.id} exists")

    async def issue(
        self,
        grant: Grant | None,
        *,
        access_token: AccessTokenRecord | None,
        refresh_token: RefreshToken | None,
    ) -> None:
        params: dict[str, object] = {}
        if grant is not None:
            params.update(grant_params(grant))
        if access_token is not None:
            params.update(access_token_params(access_token, "a_"))
        if refresh_token is not None:
            params.update(refresh_token_params(refresh_token, "r_"))
        one = self._conn.dialect.name == "postgresql"
        given = (grant is not None, access_token is not None, refresh_token is not None)
        for statement in _issue_statements(*given, one=one):
            await self._conn.execute(statement, params)

    async def get(self, grant_id: str) -> Grant | None:
        row = await self._one(select(t.grants).where(t.grants.c.id == grant_id))
        return grant_from_row(row) if row is not None else None

    async def list_for_user(self, user_id: str) -> list[Grant]:
        g = t.grants
        rows = await self._conn.execute(
            select(g).where(g.c.user_id == user_id).order_by(g.c.created_at, g.c.id)
        )
        return [grant_from_row(r) for r in rows.mappings()]

    async def get_live(self, grant_id: str) -> Grant | None:
        row = await self._one(live_grant_select(grant_id))
        return grant_from_row(row) if row is not None else None

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
