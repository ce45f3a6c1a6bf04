"""passkeys (WebAuthn credentials)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

- ``ts_passkeys``: each user's passkeys: the credential id and COSE public key (base64url), the
  last signature counter (clone detection), a name, backup eligibility (a synced passkey),
  whether user verification was done at registration, and when added and last used.

The challenges of the ceremonies are single-use links of ``ts_account_tokens`` (purposes
``passkey_*``): no table of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ts_passkeys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("transports", sa.String(length=200), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id", name="uq_ts_passkeys_credential_id"),
    )
    op.create_index("ix_ts_passkeys_user_id", "ts_passkeys", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_ts_passkeys_user_id", table_name="ts_passkeys")
    op.drop_table("ts_passkeys")
