"""sign-in transactions record the security stamp their password was checked against

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

- ``ts_interactions.pending_stamp``: the security stamp of the user who passed the password
  step and owes a second factor, read before that password was checked; the second step is
  refused once the stamp changed (a password changed or reset, ...). Existing rows: NULL, which
  the second step refuses (the user signs in again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ts_interactions") as batch:
        batch.add_column(sa.Column("pending_stamp", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ts_interactions") as batch:
        batch.drop_column("pending_stamp")
