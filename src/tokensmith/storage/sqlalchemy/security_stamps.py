"""Security stamps (``core.ports.SecurityStampStore``): one row per subject, created at the first
``hold`` or ``renew``. ``hold`` reads it ``FOR SHARE`` on PostgreSQL (a concurrent ``renew``, an
``UPDATE`` of the row, waits for the holder's transaction, and the holder for the renewer's);
SQLite needs no lock: every transaction is ``BEGIN IMMEDIATE``, one writer at a time.

``HeldStamps``: on PostgreSQL the code store locks the stamp of a code's user in the very
statement that consumes the code (``SqlCodeStore.consume``), and ``hold`` then answers from it
with no round-trip of its own."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class HeldStamps(dict[str, int]):
    """The stamps read ``FOR SHARE`` in the request's current transaction, by user, by another
    store's statement. A row so locked cannot change until the transaction ends but by this
    transaction's own ``renew``, which drops it here; ``RequestStores.commit`` (the end of the
    transaction) empties it."""

    __slots__ = ()


class SqlSecurityStampStore(SqlStore):
    __slots__ = ("_held",)

    def __init__(self, conn: AsyncConnection, held: HeldStamps | None = None) -> None:
        super().__init__(conn)
        self._held = held if held is not None else HeldStamps()

    def held(self, user_id: str) -> int | None:
        """The stamp of ``user_id`` this transaction holds already, if it does."""
        return self._held.get(user_id)

    async def hold(self, user_id: str) -> int:
        held = self._held.get(user_id)
        if held is not None:
            return held
        stamp = await self._locked(user_id)
        if stamp is None:
            # no row yet: create it (waiting for a concurrent renew's insert, if any), then lock
            await self._insert_new(t.security_stamps, {"user_id": user_id, "stamp": 0})
            stamp = await self._locked(user_id)
        assert stamp is not None  # the row exists now, and rows are never deleted
        self._held[user_id] = stamp
        return stamp

    async def current(self, user_id: str) -> int:
        s = t.security_stamps
        row = await self._one(select(s.c.stamp).where(s.c.user_id == user_id))
        return int(row["stamp"]) if row is not None else 0

    async def renew(self, user_id: str) -> None:
        s = t.security_stamps
        self._held.pop(user_id, None)
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        await self._conn.execute(
            dialect.insert(s)
            .values(user_id=user_id, stamp=1)
            .on_conflict_do_update(index_elements=[s.c.user_id], set_={"stamp": s.c.stamp + 1})
        )

    async def _locked(self, user_id: str) -> int | None:
        s = t.security_stamps
        row = await self._one(
            select(s.c.stamp).where(s.c.user_id == user_id).with_for_update(read=True)
        )
        return int(row["stamp"]) if row is not None else None
