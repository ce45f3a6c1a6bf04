"""Authorization codes (RFC 6749 §4.1.2) in SQL: consuming one is a single
``UPDATE ... WHERE consumed_at IS NULL RETURNING``, so of concurrent redemptions exactly one wins,
and the consumed row stays (until pruned) so that a replay finds the grant to revoke (§10.5).

On PostgreSQL the same statement also reads the security stamp of the code's user ``FOR SHARE``
(a scalar sub-select over the consumed row), which the redemption holds to its end anyway
(``SecurityStampStore.hold``): the lock is taken one round-trip earlier and handed to the stamp
store (``HeldStamps``), instead of a ``SELECT ... FOR SHARE`` of its own.

When the consumption is the first statement of the request's transaction (a token request
whose client was cached: the common case), it is sent alone, to the driver, and commits by
itself: a code is burnt by its consumption whatever follows (the grant commits the failed
checks' consumption anyway), and the redemption's only other statement, the issuance, checks
and holds the stamp itself (``SqlGrantStore.issue``). A PostgreSQL redemption is then two
statements and two round-trips, instead of ``BEGIN``, two statements and ``COMMIT``. A crash
between the two leaves the code burnt without tokens (as with codes in Redis): the client
starts again at ``/authorize``. A replay arriving between them finds the code used and no grant
yet: it stores the grant revoked, and the redemption's tokens are born revoked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.models import AuthorizationCode
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words
from tokensmith.storage.sqlalchemy.engine import RetryingConnection
from tokensmith.storage.sqlalchemy.security_stamps import HeldStamps

_CONSUME_HOLDING_STAMP = text(
    "WITH c AS (UPDATE ts_authorization_codes SET consumed_at = :now"
    " WHERE digest = :digest AND consumed_at IS NULL RETURNING *)"
    " SELECT c.*, (SELECT s.stamp FROM ts_security_stamps s WHERE s.user_id = c.user_id"
    " FOR SHARE) AS held_stamp FROM c"
)


_COLUMNS = ", ".join(c.name for c in t.authorization_codes.c)
# names from the table metadata, values bound: no input reaches the text
_CONSUME_ALONE = (
    "UPDATE ts_authorization_codes SET consumed_at = $1"  # noqa: S608
    f" WHERE digest = $2 AND consumed_at IS NULL RETURNING {_COLUMNS}"
)


class SqlCodeStore(SqlStore):
    __slots__ = ("_held",)

    def __init__(self, conn: AsyncConnection, held: HeldStamps | None = None) -> None:
        super().__init__(conn)
        self._held = held

    async def create(self, code: AuthorizationCode) -> None:
        await self._conn.execute(
            insert(t.authorization_codes).values(
                digest=code.digest,
                client_id=code.client_id,
                user_id=code.user_id,
                redirect_uri=code.redirect_uri,
                redirect_uri_sent=code.redirect_uri_sent,
                scopes=join_words(code.scopes),
                audience=code.audience,
                code_challenge=code.code_challenge,
                nonce=code.nonce,
                auth_time=code.auth_time,
                session_id=code.session_id,
                grant_id=code.grant_id,
                expires_at=code.expires_at,
                consumed_at=None,
                amr=join_words(code.amr),
                security_stamp=code.security_stamp,
            )
        )

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        conn = self._conn
        if (
            isinstance(conn, RetryingConnection)
            and conn.dialect.name == "postgresql"
            and not await conn.driver_in_transaction()
        ):
            rows = await conn.driver_fetch(_CONSUME_ALONE, now, digest)
            return _code(rows[0]) if rows else None
        if self._held is not None and self._conn.dialect.name == "postgresql":
            result = await self._conn.execute(
                _CONSUME_HOLDING_STAMP, {"now": now, "digest": digest}
            )
            found = result.mappings().first()
            if found is None:
                return None
            if found["held_stamp"] is not None:  # no row yet: ``hold`` will make it
                self._held[found["user_id"]] = int(found["held_stamp"])
            return _code(found)
        codes = t.authorization_codes
        row = await self._one(
            update(codes)
            .where(codes.c.digest == digest, codes.c.consumed_at.is_(None))
            .values(consumed_at=now)
            .returning(*codes.c)
        )
        return _code(row) if row else None

    async def get(self, digest: str) -> AuthorizationCode | None:
        codes = t.authorization_codes
        row = await self._one(select(codes).where(codes.c.digest == digest))
        return _code(row) if row else None


def _code(row: Any) -> AuthorizationCode:
    """From a ``RowMapping`` or an asyncpg ``Record`` (read by column name)."""
    return AuthorizationCode(
        digest=row["digest"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        redirect_uri_sent=bool(row["redirect_uri_sent"]),
        scopes=split_words(row["scopes"]),
        audience=row["audience"],
        code_challenge=row["code_challenge"],
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        session_id=row["session_id"],
        grant_id=row["grant_id"],
        expires_at=row["expires_at"],
        consumed_at=row["consumed_at"],
        amr=split_words(row["amr"]),
        security_stamp=row["security_stamp"],
    )
