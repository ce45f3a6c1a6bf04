"""Shared fixtures: a real database (SQLite file, and PostgreSQL when configured), the
authorization server app in-process, an admin on the same database, and a browser-like client.

Each test gets its own database: a copy of a migrated SQLite template file, or on PostgreSQL a
``CREATE DATABASE ... TEMPLATE`` of a migrated template (made ahead of the test and dropped after
it, on a thread of its own: ``pg_databases``). Both templates hold signing keys (``_migrate``).
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.server.harness import ServerEnv
from tests.support.database import (
    TemplateCopies,
    fresh_database_url,
    pg_admin_url,
    pg_execute,
)
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.server.runtime import ensure_keys
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine


async def _migrate(url: str) -> None:
    """The template: migrated, and holding the signing keys a first start makes (one for each
    algorithm, as of now), so that each test's server loads keys instead of making an RSA key
    (about 45 ms a test). A test about what a first start does begins with
    ``tests.support.database.forget_keys``."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        settings = Settings(issuer=ISSUER, database_url=url)  # type: ignore[arg-type]
        await ensure_keys(engine, settings, time.time)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    admin = pg_admin_url()
    name = f"ts_tmpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(_migrate(str(make_url(admin).set(database=name))))
        yield name
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[TemplateCopies]:
    """The per-test PostgreSQL databases: copies of ``pg_template`` made ahead of the tests and
    dropped after them on a thread of their own (``tests/support/database.py``)."""
    databases = TemplateCopies(pg_admin_url(), pg_template)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database for this test, on each backend."""
    yield from fresh_database_url(request, request.param, tmp_path, sqlite_template)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite database only (for tests about one backend's behaviour)."""
    path = tmp_path / "tokensmith.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]


@pytest.fixture
async def server_env(settings: Settings, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """The authorization server in-process on this test's database, with an admin and
    browser-like clients (``tests/server/harness.py``)."""
    async with ServerEnv.start(settings, clock) as env:
        yield env


@pytest.fixture
def redis_settings(database_url: str) -> Iterator[Settings]:
    """Settings with Redis for short-lived state, under a key prefix unique to this test."""
    import redis as redis_sync

    from tests.services import redis_url

    url = redis_url()
    prefix = f"ts-test-{uuid.uuid4().hex[:10]}:"
    yield Settings(
        issuer=ISSUER,
        database_url=database_url,
        redis_url=url,  # type: ignore[arg-type]
        redis_prefix=prefix,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    client = redis_sync.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_env(redis_settings: Settings, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """``server_env`` with Redis for the short-lived state (``redis_settings``)."""
    async with ServerEnv.start(redis_settings, clock) as env:
        yield env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a ``slow`` test first, then the others, each group by its number of tests
    (stable otherwise). ``make test`` hands whole files to the xdist workers in this order
    (``--dist loadfile --no-loadscope-reorder``): the files of few but long tests (servers in
    subprocesses, ``pip install``) start early instead of running alone at the end."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    ordered = sorted(
        files.values(),
        key=lambda tests: (not any(t.get_closest_marker("slow") for t in tests), -len(tests)),
    )
    items[:] = [item for tests in ordered for item in tests]
