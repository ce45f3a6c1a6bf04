"""second factors: TOTP keys, recovery codes, and how each session, code and grant was
authenticated

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-06

- ``ts_mfa_totp``: one TOTP key per user, sealed (AES-256-GCM), confirmed or not, with the last
  time step used (a code is accepted once).
- ``ts_mfa_recovery_codes``: one-time recovery codes, as HMAC digests.
- ``ts_authorization_codes.amr`` and ``ts_grants.amr``: the RFC 8176 methods of the sign-in the
  code or grant came from (existing rows: ``pwd``, the only method there was); ID tokens carry
  them as ``amr`` and ``acr``.
- ``ts_sessions.mfa_at``: when the session last presented a second factor.
- ``ts_interactions.pending_user_id`` / ``pending_auth_time``: a user who passed the password
  and owes a second factor, before any session exists for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ts_mfa_totp",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "ts_mfa_recovery_codes",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "digest"),
    )
    with op.batch_alter_table("ts_authorization_codes") as batch:
        batch.add_column(
            sa.Column("amr", sa.String(length=64), nullable=False, server_default="pwd")
        )
    with op.batch_alter_table("ts_grants") as batch:
        batch.add_column(
            sa.Column("amr", sa.String(length=64), nullable=False, server_default="pwd")
        )
    with op.batch_alter_table("ts_sessions") as batch:
        batch.add_column(sa.Column("mfa_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("ts_interactions") as batch:
        batch.add_column(sa.Column("pending_user_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pending_auth_time", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ts_interactions") as batch:
        batch.drop_column("pending_auth_time")
        batch.drop_column("pending_user_id")
    with op.batch_alter_table("ts_sessions") as batch:
        batch.drop_column("mfa_at")
    with op.batch_alter_table("ts_grants") as batch:
        batch.drop_column("amr")
    with op.batch_alter_table("ts_authorization_codes") as batch:
        batch.drop_column("amr")
    op.drop_table("ts_mfa_recovery_codes")
    op.drop_table("ts_mfa_totp")
