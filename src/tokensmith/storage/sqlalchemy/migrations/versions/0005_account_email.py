"""links sent by e-mail: sign-up, e-mail verification, password reset

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A new table, ``ts_account_tokens``: each link by the HMAC digest of its secret, its purpose, the
address it was sent to, the user it is for (none for a pending registration), what a pending
registration needs (its name and password hash, JSON), when it expires and when it was used.
Nothing existing changes; the downgrade drops the table (outstanding links stop working).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ts_account_tokens",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_ts_account_tokens_user_id", "ts_account_tokens", ["user_id"])
    op.create_index("ix_ts_account_tokens_expires_at", "ts_account_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ts_account_tokens_expires_at", table_name="ts_account_tokens")
    op.drop_index("ix_ts_account_tokens_user_id", table_name="ts_account_tokens")
    op.drop_table("ts_account_tokens")
