"""APIs open to dynamic clients; where each client comes from

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

- ``ts_apis.dynamic_clients``: whether clients registered at run time (RFC 7591) or known by a
  Client ID Metadata Document may get tokens for the API. Existing APIs are closed to them.
- ``ts_clients.origin``: ``static`` (made by the operator), ``registered`` (RFC 7591) or
  ``metadata_document``. Every existing client was made by the operator: ``static``.
- ``ts_client_documents``: fetched Client ID Metadata Documents, kept until their HTTP cache
  lifetime ends (shared by every process; without Redis).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ts_apis", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dynamic_clients", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=32), nullable=False, server_default="static")
        )
    op.create_table(
        "ts_client_documents",
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("url"),
    )
    op.create_index(
        "ix_ts_client_documents_expires_at", "ts_client_documents", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ts_client_documents_expires_at", table_name="ts_client_documents")
    op.drop_table("ts_client_documents")
    # clients that the operator did not make cannot be told apart in the old schema, and the
    # old code would treat them as static clients: they go (with their consents)
    bind = op.get_bind()
    clients = sa.table("ts_clients", sa.column("client_id", sa.String), sa.column("origin"))
    consents = sa.table("ts_consents", sa.column("client_id", sa.String))
    dynamic = sa.select(clients.c.client_id).where(clients.c.origin != "static")
    bind.execute(consents.delete().where(consents.c.client_id.in_(dynamic)))
    bind.execute(clients.delete().where(clients.c.origin != "static"))
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.drop_column("origin")
    with op.batch_alter_table("ts_apis", schema=None) as batch_op:
        batch_op.drop_column("dynamic_clients")
