"""per-client MFA: a client whose sign-ins need a second factor

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06

- ``ts_clients.mfa_required``: signing in to this client needs a second factor, as the
  server-wide ``mfa_required`` policy does for every client (existing rows: false).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ts_clients") as batch:
        batch.add_column(
            sa.Column("mfa_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("ts_clients") as batch:
        batch.drop_column("mfa_required")
