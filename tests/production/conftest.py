"""Fixtures of the production tests: a new, empty PostgreSQL database per test on the CI server
(dropped afterwards), and a Redis key prefix per test (its keys deleted afterwards)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.services import postgres_url, redis_url
from tests.support.database import pg_execute


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The URL of a new, empty database (no schema: the servers migrate it)."""
    admin = postgres_url()
    name = f"ts_prod_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def shared_redis() -> Iterator[dict[str, str]]:
    """``TOKENSMITH_REDIS_URL`` and a ``TOKENSMITH_REDIS_PREFIX`` unique to this test."""
    import redis as redis_sync

    url = redis_url()
    prefix = f"ts-prod-{uuid.uuid4().hex[:10]}:"
    yield {"redis_url": url, "redis_prefix": prefix}
    client = redis_sync.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
