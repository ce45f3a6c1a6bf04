"""The PostgreSQL administration the per-test databases are made with (``tests/conftest.py``),
shared with the suites that create databases of their own (``tests/storage/``,
``tests/production/``, ``tests/server/test_slow_clients.py``)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import postgres_url


def pg_admin_url() -> str:
    """The PostgreSQL administrative database (``TOKENSMITH_TEST_DATABASE_URL``)."""
    return postgres_url()


async def pg_execute(admin_url: str, *statements: str) -> None:
    """Run ``statements`` outside a transaction (``CREATE DATABASE`` / ``DROP DATABASE``)."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def fresh_database_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database on ``backend`` (``sqlite``: a copy of the migrated template
    file; otherwise a PostgreSQL ``CREATE DATABASE ... TEMPLATE``, dropped afterwards)."""
    if backend == "sqlite":
        path = tmp_path / "tokensmith.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template: str = request.getfixturevalue("pg_template")
    admin = pg_admin_url()
    name = f"ts_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield str(make_url(admin).set(database=name))
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
