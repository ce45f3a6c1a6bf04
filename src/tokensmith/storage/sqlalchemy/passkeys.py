"""Passkeys in SQL (``core.passkeys``).

A use is one ``UPDATE ... WHERE sign_count < :new OR (sign_count = 0 AND :new = 0)``: on
PostgreSQL the second of two concurrent updates with one counter value waits for the first's
row lock and re-checks the condition on the new row, so it changes nothing; SQLite runs one
writer at a time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from tokensmith.core.models import PasskeyCredential
from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


def _credential(row: Any) -> PasskeyCredential:
    return PasskeyCredential(
        id=row["id"],
        user_id=row["user_id"],
        credential_id=row["credential_id"],
        public_key=row["public_key"],
        sign_count=row["sign_count"],
        name=row["name"],
        created_at=row["created_at"],
        transports=tuple(x for x in row["transports"].split(",") if x),
        backup_eligible=bool(row["backup_eligible"]),
        user_verified=bool(row["user_verified"]),
        last_used_at=row["last_used_at"],
    )


class SqlPasskeyStore(SqlStore):
    async def add(self, credential: PasskeyCredential) -> bool:
        try:
            await self._insert(
                t.passkeys,
                {
                    "id": credential.id,
                    "user_id": credential.user_id,
                    "credential_id": credential.credential_id,
                    "public_key": credential.public_key,
                    "sign_count": credential.sign_count,
                    "name": credential.name,
                    "transports": ",".join(credential.transports),
                    "backup_eligible": credential.backup_eligible,
                    "user_verified": credential.user_verified,
                    "created_at": credential.created_at,
                    "last_used_at": credential.last_used_at,
                },
            )
        except Conflict:
            return False
        return True

    async def list_for_user(self, user_id: str) -> list[PasskeyCredential]:
        p = t.passkeys
        result = await self._conn.execute(
            select(p).where(p.c.user_id == user_id).order_by(p.c.created_at, p.c.id)
        )
        return [_credential(row) for row in result.mappings()]

    async def get(self, credential_id: str) -> PasskeyCredential | None:
        p = t.passkeys
        row = await self._one(select(p).where(p.c.credential_id == credential_id))
        return None if row is None else _credential(row)

    async def use(self, credential_id: str, sign_count: int, now: int) -> bool:
        p = t.passkeys
        advanced = p.c.sign_count < sign_count
        if sign_count == 0:
            advanced = or_(advanced, p.c.sign_count == 0)
        result = await self._conn.execute(
            update(p)
            .where(and_(p.c.credential_id == credential_id, advanced))
            .values(sign_count=sign_count, last_used_at=now)
        )
        return bool(result.rowcount)

    async def delete(self, user_id: str, passkey_id: str) -> bool:
        p = t.passkeys
        result = await self._conn.execute(
            delete(p).where(p.c.user_id == user_id, p.c.id == passkey_id)
        )
        return bool(result.rowcount)

    async def delete_all(self, user_id: str) -> int:
        result = await self._conn.execute(delete(t.passkeys).where(t.passkeys.c.user_id == user_id))
        return int(result.rowcount)
