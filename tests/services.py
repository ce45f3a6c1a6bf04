"""Which external services the tests may use, and what happens when one is missing.

Locally a test that needs PostgreSQL, Redis, Chromium or Node is skipped with the reason. In CI
``TOKENSMITH_TEST_REQUIRE_SERVICES=1`` turns every such skip into a failure, so nothing is skipped
silently there.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = os.environ.get("TOKENSMITH_TEST_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) the current test because a service is missing."""
    if REQUIRED:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def postgres_url() -> str:
    """The admin URL of the test PostgreSQL server (a SQLAlchemy asyncpg URL)."""
    url = os.environ.get("TOKENSMITH_TEST_DATABASE_URL", "")
    if not url:
        unavailable("PostgreSQL: set TOKENSMITH_TEST_DATABASE_URL=postgresql+asyncpg://...")
    return url


def redis_url() -> str:
    url = os.environ.get("TOKENSMITH_TEST_REDIS_URL", "")
    if not url:
        unavailable("Redis: set TOKENSMITH_TEST_REDIS_URL=redis://127.0.0.1:6379/0")
    return url


def chromium_path() -> str:
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        unavailable("Chromium: install Debian's chromium package (/usr/bin/chromium)")
    return path


def node_path() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        unavailable("Node.js: node and npm are needed for the openid-client interop tests")
        raise AssertionError("unreachable")
    return node
