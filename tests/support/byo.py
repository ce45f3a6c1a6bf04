"""Bring-your-own-users tests: a tokensmith server that signs in the members of an application's
own table (docs/examples/accounts_bcrypt.py), with bcrypt hashes written by another framework."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import sqlalchemy as sa
from docs.examples.accounts_bcrypt import MemberAccounts, members, metadata
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.server.harness import ServerEnv
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

PASSWORD = "correct horse battery"


def members_url(settings: Settings, tmp_path: Path) -> str:
    """The application's database: the same PostgreSQL database as tokensmith's (another
    table), or on SQLite a file of its own (SQLite has one writer per file)."""
    if settings.database_url.startswith("postgresql"):
        return settings.database_url
    return f"sqlite+aiosqlite:///{tmp_path / 'members.db'}"


@asynccontextmanager
async def byo_env(
    settings: Settings, clock: FakeClock, tmp_path: Path, *, allow_writes: bool
) -> AsyncIterator[tuple[ServerEnv, AsyncEngine]]:
    engine = create_async_engine(members_url(settings, tmp_path))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        await conn.execute(
            sa.insert(members),
            [
                {"id": 1, "email": "Alice@Example.com", "display_name": "Alice",
                 "password": hashed, "is_active": True},
                {"id": 2, "email": "bob@example.com", "display_name": "Bob",
                 "password": hashed, "is_active": False},
            ],
        )  # fmt: skip
    accounts = MemberAccounts(engine, allow_writes=allow_writes)
    try:
        async with ServerEnv.start(settings, clock, accounts=accounts) as env:
            yield env, engine
    finally:
        await engine.dispose()
