"""The store contract suite's fixtures: the stores of ``tokensmith.storage.compose`` on every
implementation, each test on a fresh database (and a fresh Redis key prefix).

``sql_db``: SQLite and PostgreSQL, for the concerns that live in SQL only. ``db``: the same plus
PostgreSQL + Redis, for the concerns ``build_stores`` puts in Redis when it is configured
(codes, interactions, assertion ``jti``s, the JWT deny-list, login attempt counters).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.services import redis_url
from tests.support.database import fresh_database_url
from tokensmith.storage import redis as redis_storage
from tokensmith.storage.compose import Database, Ephemeral
from tokensmith.storage.sqlalchemy.engine import create_engine

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
POSTGRES_REDIS = pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis])


def _fresh_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    backend = "sqlite" if request.param == "sqlite" else "postgres"
    yield from fresh_database_url(request, backend, tmp_path, sqlite_template)


@pytest.fixture(params=["sqlite", POSTGRES, POSTGRES_REDIS])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[tuple[str, bool]]:
    """(database URL, whether Redis holds the short-lived concerns)."""
    for url in _fresh_url(request, tmp_path, sqlite_template):
        yield url, request.param == "postgres+redis"


@pytest.fixture(params=["sqlite", POSTGRES])
def sql_backend(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    yield from _fresh_url(request, tmp_path, sqlite_template)


async def _database(url: str, *, with_redis: bool) -> AsyncIterator[Database]:
    ephemeral = None
    prefix = f"ts-store-{uuid.uuid4().hex[:10]}:"
    if with_redis:
        ephemeral = Ephemeral(redis_storage.connect(redis_url(), timeout=5.0), prefix)
    db = Database(create_engine(url), ephemeral)
    try:
        yield db
    finally:
        await db.dispose()
        if ephemeral is not None:
            keys = [k async for k in ephemeral.redis.scan_iter(f"{prefix}*")]
            if keys:
                await ephemeral.redis.delete(*keys)
            await ephemeral.redis.aclose()


@pytest.fixture
async def db(backend: tuple[str, bool]) -> AsyncIterator[Database]:
    """The stores on SQLite, PostgreSQL, and PostgreSQL + Redis."""
    url, with_redis = backend
    async for database in _database(url, with_redis=with_redis):
        yield database


@pytest.fixture
async def sql_db(sql_backend: str) -> AsyncIterator[Database]:
    """The stores on SQLite and PostgreSQL (concerns that have no Redis implementation)."""
    async for database in _database(sql_backend, with_redis=False):
        yield database
