"""Alembic steps to run inside a connection, for the migration tests."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Connection

from tokensmith.storage.sqlalchemy import migrate


def to_revision(revision: str, *, down: bool = False) -> Any:
    """A ``run_sync`` step that upgrades (or downgrades) the database to ``revision``."""

    def step(connection: Connection) -> None:
        config = migrate._config(connection)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return step
