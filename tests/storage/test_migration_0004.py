"""Migration 0004 adds what dynamic client registration keeps (a registered client's
registration access token digest and last use, the operator's initial access tokens) and its
downgrade removes them, leaving the clients that were there. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Connection, inspect, text

from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine

CLIENT = (
    "INSERT INTO ts_clients (client_id, name, client_type, redirect_uris, grant_types, scopes, "
    "apis, token_endpoint_auth_method, first_party, native, can_introspect, "
    "access_token_format, id_token_signed_response_alg, post_logout_redirect_uris, created_at, "
    "updated_at, origin) VALUES ('old', 'Old', 'public', 'https://rp.test/cb', "
    "'authorization_code', 'openid', '', 'none', false, false, false, 'jwt', 'RS256', '', 1, "
    "1, 'static')"
)


def _to(revision: str, *, down: bool = False) -> Any:
    def step(connection: Connection) -> None:
        config = migrate._config(connection)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return step


def _schema(connection: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(connection)
    columns = {str(c["name"]) for c in inspector.get_columns("ts_clients")}
    return set(inspector.get_table_names()), columns


async def test_0004_adds_registration_state_and_removes_it_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0003", down=True))
            tables, columns = await conn.run_sync(_schema)
            assert "ts_initial_access_tokens" not in tables
            assert not {"registration_token_digest", "last_used_at"} & columns
            await conn.execute(text(CLIENT))
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.begin() as conn:
            tables, columns = await conn.run_sync(_schema)
            assert "ts_initial_access_tokens" in tables
            assert {"registration_token_digest", "last_used_at"} <= columns
            row = (
                await conn.execute(
                    text("SELECT registration_token_digest, last_used_at FROM ts_clients")
                )
            ).one()
            assert tuple(row) == (None, None)
            await conn.execute(
                text(
                    "INSERT INTO ts_initial_access_tokens (digest, created_at, expires_at, "
                    "uses_left, note) VALUES ('d', 1, NULL, 3, '')"
                )
            )
            await conn.run_sync(_to("0003", down=True))
            tables, columns = await conn.run_sync(_schema)
            assert "ts_initial_access_tokens" not in tables
            assert not {"registration_token_digest", "last_used_at"} & columns
            clients = (await conn.execute(text("SELECT client_id FROM ts_clients"))).scalars()
            assert list(clients) == ["old"]
    finally:
        await engine.dispose()
