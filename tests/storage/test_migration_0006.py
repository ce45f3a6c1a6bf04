"""Migration 0006 (second factors) up and down on SQLite and PostgreSQL, from a database at
0002 with a session, a code and a grant: existing codes and grants were password sign-ins
(``amr`` = ``pwd``)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.support.migrations import to_revision
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine


async def test_0006_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0002", down=True))
            await conn.execute(
                text(
                    "INSERT INTO ts_grants (id, client_id, user_id, scopes, audience, auth_time,"
                    " created_at) VALUES ('g1', 'c', 'u', 'openid', '', 1, 1)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO ts_authorization_codes (digest, client_id, user_id, "
                    "redirect_uri, redirect_uri_sent, scopes, audience, code_challenge, "
                    "auth_time, grant_id, expires_at) VALUES ('d1', 'c', 'u', "
                    "'https://rp.test/cb', true, 'openid', '', 'x', 1, 'g1', 9)"
                )
            )
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            grant_amr = (await conn.execute(text("SELECT amr FROM ts_grants"))).scalar()
            code_amr = (await conn.execute(text("SELECT amr FROM ts_authorization_codes"))).scalar()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert (grant_amr, code_amr) == ("pwd", "pwd")
        assert {"ts_mfa_totp", "ts_mfa_recovery_codes"} <= tables
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0002", down=True))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("ts_grants")}
            )
            kept = (await conn.execute(text("SELECT id FROM ts_grants"))).scalar()
        assert not {"ts_mfa_totp", "ts_mfa_recovery_codes"} & tables
        assert "amr" not in columns
        assert kept == "g1"
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
