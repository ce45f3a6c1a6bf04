"""Bring your own users: tokensmith signs in the members of an application's existing table,
whose passwords another framework hashed with bcrypt.

The table is the application's, in the application's database; tokensmith only reads it, and
(when the operator allows writes) replaces a member's bcrypt hash by an argon2id one the first
time the member signs in with the right password: the password is at hand only then.
"""

from __future__ import annotations

import bcrypt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.accounts import UPDATE_PASSWORD, claims_for
from tokensmith.core.models import User
from tokensmith.core.passwords import PasswordCheck
from tokensmith.core.ports import Stores

metadata = sa.MetaData()

# the application's table, as its own framework created it
members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("password", sa.String(200), nullable=False),  # "$2b$12$..." (bcrypt)
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
)

SUBJECT_PREFIX = "member-"


class MemberAccounts:
    """``tokensmith.core.accounts.Accounts`` over the ``members`` table.

    ``allow_writes``: upgrade a member's bcrypt hash to argon2id on their next sign-in (and let
    tokensmith upgrade argon2 parameters later). Without it tokensmith never writes to the table
    and the pages offer no password change or reset."""

    def __init__(self, engine: AsyncEngine, *, allow_writes: bool = False) -> None:
        self.engine = engine
        self.allow_writes = allow_writes
        self.capabilities = frozenset({UPDATE_PASSWORD}) if allow_writes else frozenset()
        self._argon2 = PasswordHasher()

    def _user(self, row: sa.Row[tuple[object, ...]]) -> User:
        m = row._mapping
        return User(
            id=f"{SUBJECT_PREFIX}{m['id']}",
            username=str(m["email"]),
            email=str(m["email"]),
            email_verified=True,
            name=m["display_name"],  # type: ignore[arg-type]
            disabled=not m["is_active"],
            password_hash=str(m["password"]),
            created_at=0,
            updated_at=0,
        )

    async def _one(self, where: sa.ColumnElement[bool]) -> User | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(members).where(where))).first()
        return self._user(row) if row is not None else None

    async def find_by_login(self, stores: Stores, login: str) -> User | None:
        # ``login`` is normalised (case-folded): compare with the lower-cased address
        return await self._one(sa.func.lower(members.c.email) == login)

    async def get(self, stores: Stores, subject: str) -> User | None:
        number = subject.removeprefix(SUBJECT_PREFIX)
        if not subject.startswith(SUBJECT_PREFIX) or not number.isdigit():
            return None
        return await self._one(members.c.id == int(number))

    def verify_password(self, user: User, password: str) -> PasswordCheck:
        # runs on tokensmith's hashing pool, off the event loop
        stored = user.password_hash or ""
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            try:
                ok = bcrypt.checkpw(password.encode(), stored.encode())
            except ValueError:  # over bcrypt's 72 bytes, or a malformed hash
                ok = False
            if ok and self.allow_writes:
                return PasswordCheck(True, self._argon2.hash(password))
            return PasswordCheck(ok)
        try:
            self._argon2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return PasswordCheck(False)
        if self.allow_writes and self._argon2.check_needs_rehash(stored):
            return PasswordCheck(True, self._argon2.hash(password))
        return PasswordCheck(True)

    def claims(self, user: User, scopes: tuple[str, ...]) -> dict[str, object]:
        return claims_for(user, scopes)

    async def set_password_hash(
        self, stores: Stores, subject: str, password_hash: str, now: int
    ) -> bool:
        if not self.allow_writes or not subject.startswith(SUBJECT_PREFIX):
            return False
        number = subject.removeprefix(SUBJECT_PREFIX)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(members).where(members.c.id == int(number)).values(password=password_hash)
            )
        return result.rowcount == 1

    # members are created, renamed and deleted by the application itself: not capabilities
    # of this implementation, so tokensmith's pages never call these
    async def create(self, stores: Stores, user: User) -> None:
        raise NotImplementedError("members are created by the application")

    async def set_profile(
        self,
        stores: Stores,
        subject: str,
        *,
        name: str | None,
        email: str | None,
        email_verified: bool,
        now: int,
    ) -> bool:
        raise NotImplementedError("members change their address in the application")

    async def delete(self, stores: Stores, subject: str) -> bool:
        raise NotImplementedError("members are deleted by the application")
