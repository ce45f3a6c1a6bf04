"""Dynamic client registration (RFC 7591) and its management (RFC 7592)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

- ``ts_clients.registration_token_digest``: a registered client's registration access token, as
  its HMAC digest (NULL for every other client).
- ``ts_clients.last_used_at``: the day a registered client last got a token (stale ones are
  pruned); NULL until then.
- ``ts_initial_access_tokens``: the operator's initial access tokens, by digest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registration_token_digest", sa.String(length=64)))
        batch_op.add_column(sa.Column("last_used_at", sa.BigInteger()))
    op.create_table(
        "ts_initial_access_tokens",
        sa.Column("digest", sa.String(length=64), primary_key=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("uses_left", sa.Integer()),
        sa.Column("note", sa.String(length=200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ts_initial_access_tokens")
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("registration_token_digest")
