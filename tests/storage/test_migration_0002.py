"""Migration 0002 moves existing data: a client's default API becomes its first allowed API, and
its consents are attributed to that API (those the API cannot explain are dropped); the
downgrade gives the default API back. Run on SQLite and PostgreSQL, from a database at 0001."""

from __future__ import annotations

from sqlalchemy import text

from tests.support.migrations import to_revision
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine

API = "https://api.old.test"


async def test_0002_turns_the_default_api_into_the_first_allowed_api(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0001", down=True))
            await conn.execute(
                text(
                    "INSERT INTO ts_apis (identifier, name, scopes, scope_descriptions, "
                    "created_at) VALUES (:api, 'Old', 'docs:read docs:write', '{}', 1)"
                ),
                {"api": API},
            )
            for client_id, default_api in (("with_api", API), ("without_api", None)):
                await conn.execute(
                    text(
                        "INSERT INTO ts_clients (client_id, name, client_type, redirect_uris, "
                        "grant_types, scopes, default_api, token_endpoint_auth_method, "
                        "first_party, native, can_introspect, access_token_format, "
                        "id_token_signed_response_alg, post_logout_redirect_uris, created_at, "
                        "updated_at) VALUES (:id, 'Old', 'public', 'https://rp.test/cb', "
                        "'authorization_code', 'openid docs:read', :api, 'none', false, false, "
                        "false, 'jwt', 'RS256', '', 1, 1)"
                    ),
                    {"id": client_id, "api": default_api},
                )
            for client_id, scope in (
                ("with_api", "openid"),
                ("with_api", "docs:read"),
                ("with_api", "mail:send"),  # no longer explained by the client's API: dropped
                ("without_api", "openid"),
                ("without_api", "docs:read"),  # no API to attribute it to: dropped
                ("deleted_client", "openid"),  # the client is gone: dropped
            ):
                await conn.execute(
                    text(
                        "INSERT INTO ts_consents (user_id, client_id, scope, granted_at) "
                        "VALUES ('u1', :client, :scope, 7)"
                    ),
                    {"client": client_id, "scope": scope},
                )
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            apis = dict(
                (await conn.execute(text("SELECT client_id, apis FROM ts_clients"))).fetchall()
            )
            consents = set(
                (
                    await conn.execute(
                        text("SELECT client_id, api, scope, granted_at FROM ts_consents")
                    )
                ).fetchall()
            )
        assert apis == {"with_api": API, "without_api": ""}
        assert consents == {
            ("with_api", API, "openid", 7),
            ("with_api", API, "docs:read", 7),
            ("without_api", "", "openid", 7),
        }
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0001", down=True))
            defaults = dict(
                (
                    await conn.execute(text("SELECT client_id, default_api FROM ts_clients"))
                ).fetchall()
            )
            old_consents = set(
                (await conn.execute(text("SELECT client_id, scope FROM ts_consents"))).fetchall()
            )
        assert defaults == {"with_api": API, "without_api": None}
        assert old_consents == {
            ("with_api", "openid"),
            ("with_api", "docs:read"),
            ("without_api", "openid"),
        }
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
