"""The PostgreSQL administration the per-test databases are made with (``tests/conftest.py``),
shared with the suites that create databases of their own (``tests/storage/``,
``tests/production/``, ``tests/server/test_slow_clients.py``)."""

from __future__ import annotations

from sqlalchemy import text
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
