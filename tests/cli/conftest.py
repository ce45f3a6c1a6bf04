"""The CLI tests' fixtures: the real ``tokensmith`` console script on a test database."""

from __future__ import annotations

import pytest

from tests.support.cli import Cli


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


@pytest.fixture
def sqlite_cli(sqlite_url: str) -> Cli:
    return Cli(sqlite_url)
