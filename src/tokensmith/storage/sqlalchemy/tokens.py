"""Access-token records with the JWT deny-list, and refresh tokens (rotated atomically:
one ``UPDATE ... WHERE rotated_at IS NULL RETURNING``, RFC 9700 §4.14.2).

Their rows are inserted by statements built once (``insert_sql``) and sent with a parameter
dict, which spares SQLAlchemy building and keying a statement of literal values per call;
``SqlGrantStore.issue`` sends them together with a grant's.

A refresh rotates its token and reads the token's live grant (``rotate_with_grant``): on
PostgreSQL one statement, the ``UPDATE ... RETURNING`` in a CTE joined to the grant and its user
(the read of ``GrantStore.get_live``); on SQLite the two statements."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from sqlalchemy import RowMapping, Select, Table, TextClause, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.models import AccessTokenRecord, Grant, RefreshToken
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import (
    SqlStore,
    chunks,
    join_words,
    may_hold_any,
    split_words,
)
from tokensmith.storage.sqlalchemy.engine import RetryingConnection


def insert_sql(table: Table, prefix: str = "", *, on_conflict: str = "") -> str:
    """``INSERT INTO table (every column) VALUES (:<prefix><column>, ...)`` and ``on_conflict``:
    the parameters of a row are ``params(row_dict, prefix)``."""
    columns = [c.name for c in table.c]
    names = ", ".join(columns)
    values = ", ".join(f":{prefix}{c}" for c in columns)
    # names from the table metadata, values bound: no input reaches the text
    return f"INSERT INTO {table.name} ({names}) VALUES ({values}){on_conflict}"  # noqa: S608


def access_token_params(token: AccessTokenRecord, prefix: str = "") -> dict[str, object]:
    return {
        f"{prefix}jti": token.jti,
        f"{prefix}digest": token.digest,
        f"{prefix}grant_id": token.grant_id,
        f"{prefix}client_id": token.client_id,
        f"{prefix}subject": token.subject,
        f"{prefix}scopes": join_words(token.scopes),
        f"{prefix}audience": token.audience,
        f"{prefix}issued_at": token.issued_at,
        f"{prefix}expires_at": token.expires_at,
        f"{prefix}revoked_at": token.revoked_at,
    }


def refresh_token_params(token: RefreshToken, prefix: str = "") -> dict[str, object]:
    return {
        f"{prefix}digest": token.digest,
        f"{prefix}grant_id": token.grant_id,
        f"{prefix}client_id": token.client_id,
        f"{prefix}issued_at": token.issued_at,
        f"{prefix}expires_at": token.expires_at,
        f"{prefix}absolute_expires_at": token.absolute_expires_at,
        f"{prefix}rotated_at": token.rotated_at,
    }


def _rotate_with_grant_sql() -> str:
    grant_columns = ", ".join(f"g.{c.name} AS g_{c.name}" for c in t.grants.c)
    # names from the table metadata, values bound: no input reaches the text
    return (
        "WITH r AS (UPDATE ts_refresh_tokens SET rotated_at = :now WHERE digest = :digest"  # noqa: S608
        " AND rotated_at IS NULL AND client_id = :client_id RETURNING *)"
        f" SELECT r.*, {grant_columns} FROM r"
        # The grant read FOR SHARE: the statement's snapshot is taken before the UPDATE waits
        # for a concurrent rotation of the same token (which may then roll back), so a plain
        # join would see the grant as it was then, live although revoked meanwhile; a locked
        # read sees its latest version (as ``get_live``, a statement of its own, did), and a
        # revocation still running waits for this refresh, then revokes what it issued.
        " LEFT JOIN LATERAL (SELECT g.* FROM ts_grants g JOIN ts_users u ON u.id = g.user_id"
        " WHERE g.id = r.grant_id AND g.revoked_at IS NULL AND u.disabled = false"
        " FOR SHARE OF g) g ON true"
    )


ROTATE_WITH_GRANT: TextClause = text(_rotate_with_grant_sql())
#: the same for the driver (``RetryingConnection.driver_fetch``): $1 now, $2 digest, $3 client id
ROTATE_WITH_GRANT_DRIVER = (
    _rotate_with_grant_sql()
    .replace(":now", "$1")
    .replace(":digest", "$2")
    .replace(":client_id", "$3")
)
INSERT_ACCESS_TOKEN: TextClause = text(insert_sql(t.access_tokens))
INSERT_REFRESH_TOKEN: TextClause = text(insert_sql(t.refresh_tokens))


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
        await self._conn.execute(INSERT_ACCESS_TOKEN, access_token_params(token))

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

    async def revoke_for_client_audience(self, client_id: str, audience: str, now: int) -> int:
        a = t.access_tokens
        result = await self._conn.execute(
            update(a)
            .where(
                a.c.client_id == client_id,
                a.c.audience == audience,
                a.c.revoked_at.is_(None),
                a.c.expires_at > now,
            )
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_client_scopes(
        self, client_id: str, scopes: Collection[str], now: int
    ) -> int:
        a = t.access_tokens
        rows = await self._conn.execute(
            select(a.c.jti, a.c.scopes).where(
                a.c.client_id == client_id,
                a.c.revoked_at.is_(None),
                a.c.expires_at > now,
                may_hold_any(a.c.scopes, scopes),
            )
        )
        wanted = set(scopes)
        jtis = [r.jti for r in rows if wanted.intersection(split_words(r.scopes))]
        revoked = 0
        for some in chunks(jtis):
            result = await self._conn.execute(
                update(a).where(a.c.jti.in_(some), a.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            revoked += int(result.rowcount)
        return revoked

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
        await self._conn.execute(INSERT_REFRESH_TOKEN, refresh_token_params(token))

    async def rotate(self, digest: str, now: int, *, client_id: str) -> RefreshToken | None:
        r = t.refresh_tokens
        row = await self._one(
            update(r)
            .where(r.c.digest == digest, r.c.rotated_at.is_(None), r.c.client_id == client_id)
            .values(rotated_at=now)
            .returning(*r.c)
        )
        return _refresh_token(row) if row else None

    async def rotate_with_grant(
        self, digest: str, now: int, *, client_id: str
    ) -> tuple[RefreshToken, Grant | None] | None:
        if self._conn.dialect.name != "postgresql":
            token = await self.rotate(digest, now, client_id=client_id)
            if token is None:
                return None
            live = await self._one(live_grant_select(token.grant_id))
            return token, grant_from_row(live) if live is not None else None
        conn = self._conn
        row: Any
        if isinstance(conn, RetryingConnection):
            # to the driver, in the request's transaction (begun here if it has not been)
            rows = await conn.driver_fetch(
                ROTATE_WITH_GRANT_DRIVER, now, digest, client_id, begin=True
            )
            row = rows[0] if rows else None
        else:
            result = await conn.execute(
                ROTATE_WITH_GRANT, {"now": now, "digest": digest, "client_id": client_id}
            )
            row = result.mappings().first()
        if row is None:
            return None
        return _refresh_token(row), grant_from_row(row, "g_") if row["g_id"] is not None else None

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


def live_grant_select(grant_id: str) -> Select[Any]:
    """The grant unless it is revoked or its user is gone or disabled (``get_live``)."""
    g, u = t.grants, t.users
    return (
        select(g)
        .join(u, u.c.id == g.c.user_id)
        .where(g.c.id == grant_id, g.c.revoked_at.is_(None), u.c.disabled.is_(False))
    )


def grant_from_row(row: RowMapping, prefix: str = "") -> Grant:
    """A ``ts_grants`` row (its columns named ``<prefix><column>``) as a ``Grant``."""
    return Grant(
        id=row[f"{prefix}id"],
        client_id=row[f"{prefix}client_id"],
        user_id=row[f"{prefix}user_id"],
        scopes=split_words(row[f"{prefix}scopes"]),
        audience=row[f"{prefix}audience"],
        auth_time=row[f"{prefix}auth_time"],
        created_at=row[f"{prefix}created_at"],
        revoked_at=row[f"{prefix}revoked_at"],
        session_id=row[f"{prefix}session_id"],
        amr=split_words(row[f"{prefix}amr"]),
    )
