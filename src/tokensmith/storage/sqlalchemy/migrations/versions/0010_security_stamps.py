"""security stamps: authorization codes die with the sessions and grants of their user

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-06

- ``ts_security_stamps``: a counter per subject, renewed by every event that ends a user's
  sessions or grants (``core.ports.SecurityStampStore``); no row means 0.
- ``ts_authorization_codes.security_stamp``: the user's stamp when the code was issued (existing
  codes: 0, which matches a user without a row).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ts_security_stamps",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("ts_authorization_codes") as batch:
        batch.add_column(
            sa.Column("security_stamp", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("ts_authorization_codes") as batch:
        batch.drop_column("security_stamp")
    op.drop_table("ts_security_stamps")
