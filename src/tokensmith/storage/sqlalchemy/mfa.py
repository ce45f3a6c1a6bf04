"""Second factors in SQL (``core.totp``, ``core.recovery_codes``).

Using a TOTP time step is one ``UPDATE ... WHERE last_step IS NULL OR last_step < :step``: on
PostgreSQL the second of two concurrent updates waits for the first's row lock and re-checks the
condition on the new row, so it changes nothing; SQLite runs one writer at a time. A recovery
code is used by ``UPDATE ... WHERE used_at IS NULL`` the same way.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, or_, select, update

from tokensmith.core.models import TotpCredential
from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlTotpStore(SqlStore):
    async def get(self, user_id: str) -> TotpCredential | None:
        row = await self._one(select(t.mfa_totp).where(t.mfa_totp.c.user_id == user_id))
        if row is None:
            return None
        return TotpCredential(
            user_id=row["user_id"],
            sealed_secret=row["secret"],
            created_at=row["created_at"],
            confirmed_at=row["confirmed_at"],
            last_step=row["last_step"],
        )

    async def begin(self, user_id: str, sealed_secret: str, now: int) -> bool:
        m = t.mfa_totp
        await self._conn.execute(
            delete(m).where(m.c.user_id == user_id, m.c.confirmed_at.is_(None))
        )
        try:
            await self._insert(m, {"user_id": user_id, "secret": sealed_secret, "created_at": now})
        except Conflict:  # a confirmed key is there
            return False
        return True

    async def confirm(self, user_id: str, now: int) -> bool:
        m = t.mfa_totp
        result = await self._conn.execute(
            update(m)
            .where(m.c.user_id == user_id, m.c.confirmed_at.is_(None))
            .values(confirmed_at=now)
        )
        return bool(result.rowcount)

    async def use_step(self, user_id: str, step: int) -> bool:
        m = t.mfa_totp
        result = await self._conn.execute(
            update(m)
            .where(m.c.user_id == user_id, or_(m.c.last_step.is_(None), m.c.last_step < step))
            .values(last_step=step)
        )
        return bool(result.rowcount)

    async def delete(self, user_id: str) -> bool:
        result = await self._conn.execute(delete(t.mfa_totp).where(t.mfa_totp.c.user_id == user_id))
        return bool(result.rowcount)


class SqlRecoveryCodeStore(SqlStore):
    async def replace(self, user_id: str, digests: tuple[str, ...], now: int) -> None:
        r = t.mfa_recovery_codes
        await self._conn.execute(delete(r).where(r.c.user_id == user_id))
        if digests:
            await self._conn.execute(
                insert(r),
                [{"user_id": user_id, "digest": d, "created_at": now} for d in digests],
            )

    async def use(self, user_id: str, digest: str, now: int) -> bool:
        r = t.mfa_recovery_codes
        result = await self._conn.execute(
            update(r)
            .where(r.c.user_id == user_id, r.c.digest == digest, r.c.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(result.rowcount)

    async def count_unused(self, user_id: str) -> int:
        r = t.mfa_recovery_codes
        result = await self._conn.execute(
            select(func.count()).where(r.c.user_id == user_id, r.c.used_at.is_(None))
        )
        return int(result.scalar_one())

    async def delete_all(self, user_id: str) -> int:
        r = t.mfa_recovery_codes
        result = await self._conn.execute(delete(r).where(r.c.user_id == user_id))
        return int(result.rowcount)
