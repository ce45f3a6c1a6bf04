"""Migration 0010 (security stamps) up and down on SQLite and PostgreSQL, from a database at 0007
with an outstanding code: the code gets stamp 0, which a user without a stamp row has, so codes
issued before the upgrade stay redeemable."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.support.migrations import to_revision as _to
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine

CODE = (
    "INSERT INTO ts_authorization_codes (digest, client_id, user_id, redirect_uri, "
    "redirect_uri_sent, scopes, audience, code_challenge, auth_time, grant_id, expires_at) "
    "VALUES ('d1', 'c1', 'u1', 'https://rp.test/cb', true, 'openid', '', 'x', 1, 'g1', 61)"
)


async def test_0010_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0007", down=True))
            await conn.execute(text(CODE))
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            stamp = (
                await conn.execute(
                    text("SELECT security_stamp FROM ts_authorization_codes WHERE digest = 'd1'")
                )
            ).scalar()
            stamps = (await conn.execute(text("SELECT count(*) FROM ts_security_stamps"))).scalar()
        assert stamp == 0
        assert stamps == 0
        async with engine.begin() as conn:
            await conn.run_sync(_to("0007", down=True))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("ts_authorization_codes")}
            )
            kept = (await conn.execute(text("SELECT digest FROM ts_authorization_codes"))).scalar()
        assert "ts_security_stamps" not in tables
        assert "security_stamp" not in columns
        assert kept == "d1"
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
