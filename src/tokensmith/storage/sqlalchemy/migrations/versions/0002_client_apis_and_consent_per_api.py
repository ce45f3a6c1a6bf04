"""clients get a list of allowed APIs; consents are kept per API

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

- ``ts_clients.default_api`` becomes ``ts_clients.apis``: the space-separated identifiers of the
  APIs (RFC 8707 audiences) the client may get tokens for, the default first. A client's existing
  default API becomes its first (and only) allowed API; a client without one gets none.
- ``ts_consents`` gains ``api`` in its primary key: a consent is for a client, an API and a scope.
  Existing consents were given for the client's default API (the audience of its requests without
  ``resource``), so they are kept for that API, but only for scopes that API defines and for the
  OpenID Connect scopes; a consent for anything else cannot be attributed to an API and is dropped
  (the user is asked again). Clients without a default API keep their OpenID Connect consents for
  ``''`` (requests without an API).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def _consents_table(*, with_api: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
    ]
    if with_api:
        columns.append(sa.Column("api", sa.String(length=2000), nullable=False))
    columns += [
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
    ]
    return columns


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("apis", sa.Text(), nullable=False, server_default=""))
    clients = sa.table(
        "ts_clients",
        sa.column("client_id", sa.String),
        sa.column("default_api", sa.String),
        sa.column("apis", sa.Text),
    )
    bind.execute(
        clients.update()
        .where(clients.c.default_api.is_not(None))
        .values(apis=clients.c.default_api)
    )
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.alter_column("apis", server_default=None)
        batch_op.drop_column("default_api")

    # consents: copy, attributing each to the client's default API, then rebuild the table
    apis = sa.table("ts_apis", sa.column("identifier", sa.String), sa.column("scopes", sa.Text))
    defined = {row.identifier: set(row.scopes.split()) for row in bind.execute(sa.select(apis))}
    default_of = {
        row.client_id: (row.apis.split() or [""])[0]
        for row in bind.execute(sa.select(clients.c.client_id, clients.c.apis))
    }
    old = sa.table(
        "ts_consents",
        sa.column("user_id", sa.String),
        sa.column("client_id", sa.String),
        sa.column("scope", sa.String),
        sa.column("granted_at", sa.BigInteger),
    )
    kept = []
    for row in bind.execute(sa.select(old)):
        api = default_of.get(row.client_id)
        if api is None:
            continue  # the client is gone
        if row.scope in OIDC_SCOPES or row.scope in defined.get(api, set()):
            kept.append(
                {
                    "user_id": row.user_id,
                    "client_id": row.client_id,
                    "api": api,
                    "scope": row.scope,
                    "granted_at": row.granted_at,
                }
            )
    op.drop_table("ts_consents")
    consents = op.create_table(
        "ts_consents",
        *_consents_table(with_api=True),
        sa.PrimaryKeyConstraint("user_id", "client_id", "api", "scope"),
    )
    if kept:
        op.bulk_insert(consents, kept)


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_api", sa.String(length=2000), nullable=True))
    clients = sa.table(
        "ts_clients",
        sa.column("client_id", sa.String),
        sa.column("default_api", sa.String),
        sa.column("apis", sa.Text),
    )
    for row in bind.execute(sa.select(clients.c.client_id, clients.c.apis)).all():
        first = (row.apis.split() or [None])[0]
        if first is not None:
            bind.execute(
                clients.update()
                .where(clients.c.client_id == row.client_id)
                .values(default_api=first)
            )
    with op.batch_alter_table("ts_clients", schema=None) as batch_op:
        batch_op.drop_column("apis")

    # consents for the client's default API (and those without an API) survive; consents for
    # its other APIs cannot be told apart from them in the old schema and are dropped
    default_of = {
        row.client_id: row.default_api or ""
        for row in bind.execute(sa.select(clients.c.client_id, clients.c.default_api))
    }
    new = sa.table(
        "ts_consents",
        sa.column("user_id", sa.String),
        sa.column("client_id", sa.String),
        sa.column("api", sa.String),
        sa.column("scope", sa.String),
        sa.column("granted_at", sa.BigInteger),
    )
    kept: dict[tuple[str, str, str], dict[str, object]] = {}
    for row in bind.execute(sa.select(new)):
        if default_of.get(row.client_id) != row.api:
            continue
        kept[(row.user_id, row.client_id, row.scope)] = {
            "user_id": row.user_id,
            "client_id": row.client_id,
            "scope": row.scope,
            "granted_at": row.granted_at,
        }
    op.drop_table("ts_consents")
    consents = op.create_table(
        "ts_consents",
        *_consents_table(with_api=False),
        sa.PrimaryKeyConstraint("user_id", "client_id", "scope"),
    )
    if kept:
        op.bulk_insert(consents, list(kept.values()))
