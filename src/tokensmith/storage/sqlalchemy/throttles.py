"""Login attempt counters (``core.throttle``) in SQL."""

from __future__ import annotations

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tokensmith.core.throttle import BackoffPolicy, FailureCount, Reservation
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlLoginFailureStore(SqlStore):
    """Login attempt counters in ``ts_login_failures``.

    A reservation is one ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <admitted>
    RETURNING`` (SQLite 3.35+, PostgreSQL): the policy's back-off is a ``CASE`` over the stored
    count, so the check and the increment are one statement. On PostgreSQL the conflicting row
    is locked and the ``WHERE`` evaluated on its latest version, so concurrent reservations
    queue on that row (until their transaction commits: callers commit at once); SQLite runs
    one writer at a time. A counter past ``expires_at`` counts as empty.
    """

    async def get(self, key: str) -> FailureCount | None:
        f = t.login_failures
        row = await self._one(select(f).where(f.c.key == key))
        return FailureCount(row["count"], row["last_at"]) if row else None

    async def reserve(self, key: str, now: int, *, policy: BackoffPolicy, ttl: int) -> Reservation:
        f = t.login_failures
        steps = policy.steps()
        delay = case(
            (f.c.count < policy.free_attempts, 0),
            *((f.c.count == policy.free_attempts + i, d) for i, d in enumerate(steps[:-1])),
            else_=steps[-1],
        )
        upsert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            upsert(f)
            .values(key=key, count=1, last_at=now, expires_at=now + ttl)
            .on_conflict_do_update(
                index_elements=[f.c.key],
                set_={
                    "count": case((f.c.expires_at <= now, 1), else_=f.c.count + 1),
                    # never back in time: a request may have read the clock before another
                    # one, a second later, took the row lock first
                    "last_at": case((f.c.last_at > now, f.c.last_at), else_=now),
                    "expires_at": case(
                        (f.c.expires_at > now + ttl, f.c.expires_at), else_=now + ttl
                    ),
                },
                # below the free attempts no back-off applies, whatever the stamps say
                where=or_(
                    f.c.expires_at <= now,
                    f.c.count < policy.free_attempts,
                    f.c.last_at + delay <= now,
                ),
            )
            .returning(f.c.count, f.c.last_at)
        )
        row = await self._one(stmt)
        if row is not None:
            return Reservation(True, FailureCount(row["count"], row["last_at"]))
        current = await self.get(key)
        return Reservation(False, current or FailureCount(0, now))

    async def release(self, key: str) -> None:
        f = t.login_failures
        await self._conn.execute(
            update(f).where(f.c.key == key, f.c.count > 0).values(count=f.c.count - 1)
        )

    async def clear(self, key: str) -> None:
        await self._conn.execute(delete(t.login_failures).where(t.login_failures.c.key == key))
