"""Alembic steps to run inside a connection, for the migration tests."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Connection

from tokensmith.storage.sqlalchemy import migrate


def to_revision(revision: str, *, down: bool = False) -> Any:
    """A ``run_sync`` step that upgrades (or downgrades) the database to ``revision``."""

    def step(connection: Connection) -> None:
        config = migrate._config(connection)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return step


# A client row as revision 0002 stored it ({extra}/{values}: columns a later revision added).
CLIENT = (
    "INSERT INTO ts_clients (client_id, name, client_type, redirect_uris, grant_types, scopes, "
    "apis, token_endpoint_auth_method, first_party, native, can_introspect, "
    "access_token_format, id_token_signed_response_alg, post_logout_redirect_uris, created_at, "
    "updated_at{extra}) VALUES (:id, 'Old', 'public', 'https://rp.test/cb', "
    "'authorization_code', 'openid', :api, 'none', false, false, false, 'jwt', 'RS256', '', 1, "
    "1{values})"
)
