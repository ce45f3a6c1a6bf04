"""Security stamps (``core.ports.SecurityStampStore``): one row per subject, created at the first
``hold`` or ``renew``. ``hold`` reads it ``FOR SHARE`` on PostgreSQL (a concurrent ``renew``, an
``UPDATE`` of the row, waits for the holder's transaction, and the holder for the renewer's);
SQLite needs no lock: every transaction is ``BEGIN IMMEDIATE``, one writer at a time."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlSecurityStampStore(SqlStore):
    async def hold(self, user_id: str) -> int:
        stamp = await self._locked(user_id)
        if stamp is None:
            # no row yet: create it (waiting for a concurrent renew's insert, if any), then lock
            await self._insert_new(t.security_stamps, {"user_id": user_id, "stamp": 0})
            stamp = await self._locked(user_id)
        assert stamp is not None  # the row exists now, and rows are never deleted
        return stamp

    async def renew(self, user_id: str) -> None:
        s = t.security_stamps
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
