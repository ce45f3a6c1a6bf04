"""Grants: what a user allowed a client in one authorization, the root every token of a
family hangs from; revoking one revokes the family.

``issue`` writes the rows of one issuance (a code's grant, the access-token record, the refresh
token). On PostgreSQL that is one statement, the other inserts in data-modifying CTEs (``WITH g
AS (INSERT INTO ts_grants ... ON CONFLICT (id) DO NOTHING), a AS (INSERT INTO ts_access_tokens
...) INSERT INTO ts_refresh_tokens ...``): one round-trip instead of three, each CTE run exactly
once, all or nothing like any statement. SQLite has no data-modifying CTEs: the same inserts one
after another, in the same transaction.

A code's redemption also hands ``issue`` the security stamp its code recorded (``stamp``): the
rows are written only while the user's stamp is still that one, read ``FOR SHARE`` (an event
that renews it waits for the issuance, then revokes the grant; one that renewed it first makes
the issuance refuse, ``StaleStamp``). On PostgreSQL the check is a CTE of the same statement
(``WITH s AS (SELECT stamp ... FOR SHARE) ... INSERT ... SELECT ... FROM ok``), so a redemption
whose code was consumed by a statement of its own (autocommit, ``SqlCodeStore.consume``) writes
everything with one more statement and holds the lock for that statement's length; a stamp
the transaction holds already (``HeldStamps``) is compared without a lock of its own. The
PostgreSQL statement goes to the driver (``RetryingConnection.driver_fetch``): a prepared
statement, past SQLAlchemy's per-statement work."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Integer, TextClause, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.models import AccessTokenRecord, Grant, RefreshToken
from tokensmith.core.ports import Conflict, StaleStamp
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import (
    SqlStore,
    chunks,
    join_words,
    may_hold_any,
    split_words,
)
from tokensmith.storage.sqlalchemy.engine import RetryingConnection
from tokensmith.storage.sqlalchemy.security_stamps import SqlSecurityStampStore
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


_PG_TYPES = {BigInteger: "bigint", Integer: "integer", Boolean: "boolean"}


def _pg_type(column: Column[Any]) -> str:
    """The PostgreSQL type a driver parameter is cast to (text for strings: a cast to
    ``varchar(n)`` would cut a longer value, the assignment to the column refuses it)."""
    return next((name for kind, name in _PG_TYPES.items() if isinstance(column.type, kind)), "text")


@cache
def _driver_issue_sql(
    grant: bool, access: bool, refresh: bool, *, stamp: bool
) -> tuple[str, tuple[str, ...]]:
    """PostgreSQL's statement of an issuance for the driver (``$n`` parameters) and the names
    of its parameters in order (the keys of ``grant_params`` & co., ``stamp_user``/``stamp``).
    With ``stamp``, each insert takes its row from ``ok``: none unless the user's stamp, read
    ``FOR SHARE``, is ``$stamp``; the statement answers the stamp read (no row: the user has no
    stamp row yet)."""
    names: list[str] = []

    def param(name: str, column: Column[Any] | None = None) -> str:
        names.append(name)
        cast = f"::{_pg_type(column)}" if column is not None else ""
        return f"${len(names)}{cast}"

    ctes: list[str] = []
    if stamp:
        ctes.append(
            "s AS (SELECT stamp FROM ts_security_stamps"  # noqa: S608
            f" WHERE user_id = {param('stamp_user')}::text FOR SHARE)"
        )
        ctes.append(f"ok AS (SELECT 1 FROM s WHERE stamp = {param('stamp')}::bigint)")  # noqa: S608
    inserts: list[str] = []
    for table, prefix, given, conflict in (
        (t.grants, "g_", grant, " ON CONFLICT (id) DO NOTHING"),
        (t.access_tokens, "a_", access, ""),
        (t.refresh_tokens, "r_", refresh, ""),
    ):
        if not given:
            continue
        columns = ", ".join(c.name for c in table.c)
        values = ", ".join(param(prefix + c.name, c) for c in table.c)
        # names from the table metadata, values bound: no input reaches the text
        source = f"SELECT {values} FROM ok" if stamp else f"VALUES ({values})"  # noqa: S608
        inserts.append(f"INSERT INTO {table.name} ({columns}) {source}{conflict}")
    if stamp:
        ctes += [f"w{i} AS ({sql})" for i, sql in enumerate(inserts)]
        return f"WITH {', '.join(ctes)} SELECT stamp FROM s", tuple(names)  # noqa: S608
    *first, last = inserts
    with_ = "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(first)) + " "
    return (with_ if first else "") + last, tuple(names)


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
    __slots__ = ("_stamps",)

    def __init__(self, conn: AsyncConnection, stamps: SqlSecurityStampStore | None = None) -> None:
        super().__init__(conn)
        self._stamps = stamps if stamps is not None else SqlSecurityStampStore(conn)

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
        stamp: tuple[str, int] | None = None,
        last: bool = False,
    ) -> None:
        params: dict[str, object] = {}
        if grant is not None:
            params.update(grant_params(grant))
        if access_token is not None:
            params.update(access_token_params(access_token, "a_"))
        if refresh_token is not None:
            params.update(refresh_token_params(refresh_token, "r_"))
        given = (grant is not None, access_token is not None, refresh_token is not None)
        conn = self._conn
        one = conn.dialect.name == "postgresql"
        # The driver's statement commits by itself outside a transaction: only an issuance
        # that is its request's last write (a code's redemption, ``stamp``; ``last``) may be
        # sent so.
        if (
            one
            and isinstance(conn, RetryingConnection)
            and any(given)
            and (stamp is not None or last or await conn.driver_in_transaction())
        ):
            if stamp is not None:
                held = self._stamps.held(stamp[0])
                if held is not None:  # locked by this transaction already
                    if held != stamp[1]:
                        raise StaleStamp(stamp[0])
                    stamp = None
            if stamp is not None:
                params["stamp_user"], params["stamp"] = stamp
                sql, names = _driver_issue_sql(*given, stamp=True)
                rows = await conn.driver_fetch(sql, *[params[name] for name in names])
                if rows:  # nothing written unless it was the stamp expected
                    if int(rows[0]["stamp"]) != stamp[1]:
                        raise StaleStamp(stamp[0])
                    return
                # no stamp row yet (nothing written): ``hold`` makes it, below
            else:
                sql, names = _driver_issue_sql(*given, stamp=False)
                await conn.driver_fetch(sql, *[params[name] for name in names])
                return
        if stamp is not None and await self._stamps.hold(stamp[0]) != stamp[1]:
            raise StaleStamp(stamp[0])
        for statement in _issue_statements(*given, one=one):
            await conn.execute(statement, params)

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

    async def revoke_for_client_audience(self, client_id: str, audience: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g)
            .where(g.c.client_id == client_id, g.c.audience == audience, g.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_client_scopes(
        self, client_id: str, scopes: Collection[str], now: int
    ) -> int:
        g = t.grants
        rows = await self._conn.execute(
            select(g.c.id, g.c.scopes).where(
                g.c.client_id == client_id,
                g.c.revoked_at.is_(None),
                may_hold_any(g.c.scopes, scopes),
            )
        )
        wanted = set(scopes)
        ids = [r.id for r in rows if wanted.intersection(split_words(r.scopes))]
        revoked = 0
        for some in chunks(ids):
            result = await self._conn.execute(
                update(g).where(g.c.id.in_(some), g.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            revoked += int(result.rowcount)
        return revoked
