"""End-user accounts; a username or e-mail is unique (``Conflict`` otherwise)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, delete, select, update
from sqlalchemy.exc import IntegrityError

from tokensmith.core.models import User
from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlUserStore(SqlStore):
    async def get(self, user_id: str) -> User | None:
        row = await self._one(select(t.users).where(t.users.c.id == user_id))
        return _user(row) if row else None

    async def find_by_login(self, login: str) -> User | None:
        column = t.users.c.email if "@" in login else t.users.c.username
        row = await self._one(select(t.users).where(column == login))
        return _user(row) if row else None

    async def create(self, user: User) -> None:
        await self._insert(
            t.users,
            {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
                "password_hash": user.password_hash,
                "disabled": user.disabled,
                "created_at": user.created_at,
                "updated_at": user.updated_at,
            },
        )

    async def list(self) -> list[User]:
        rows = await self._conn.execute(select(t.users).order_by(t.users.c.username))
        return [_user(r) for r in rows.mappings()]

    async def set_password_hash(self, user_id: str, password_hash: str, now: int) -> bool:
        return await self._update(user_id, password_hash=password_hash, updated_at=now)

    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> bool:
        return await self._update(user_id, disabled=disabled, updated_at=now)

    async def delete(self, user_id: str) -> bool:
        result = await self._conn.execute(delete(t.users).where(t.users.c.id == user_id))
        return bool(result.rowcount)

    async def set_profile(
        self, user_id: str, *, name: str | None, email: str | None, email_verified: bool, now: int
    ) -> bool:
        try:
            async with self._conn.begin_nested():
                return await self._update(
                    user_id, name=name, email=email, email_verified=email_verified, updated_at=now
                )
        except IntegrityError:
            raise Conflict("another user has this email") from None

    async def _update(self, user_id: str, **values: Any) -> bool:
        result = await self._conn.execute(
            update(t.users).where(t.users.c.id == user_id).values(**values)
        )
        return bool(result.rowcount)


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        email_verified=bool(row["email_verified"]),
        name=row["name"],
        disabled=bool(row["disabled"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
