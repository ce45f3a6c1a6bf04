"""Alembic environment: runs on the connection that ``tokensmith.storage.sqlalchemy.migrate``
hands over in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from tokensmith.storage.sqlalchemy.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
