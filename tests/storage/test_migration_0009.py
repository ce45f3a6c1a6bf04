"""Migration 0009 (per-client MFA) up and down on SQLite and PostgreSQL, from a database at
0006 with a client: an existing client does not require a second factor."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.support.migrations import CLIENT
from tests.support.migrations import to_revision as _to
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine


async def test_0009_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0006", down=True))
            await conn.execute(text(CLIENT.format(extra="", values="")), {"id": "c1", "api": ""})
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            value = (
                await conn.execute(
                    text("SELECT mfa_required FROM ts_clients WHERE client_id = 'c1'")
                )
            ).scalar()
        assert value is not None
        assert not value
        async with engine.begin() as conn:
            await conn.run_sync(_to("0006", down=True))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("ts_clients")}
            )
            kept = (await conn.execute(text("SELECT client_id FROM ts_clients"))).scalar()
        assert "mfa_required" not in columns
        assert kept == "c1"
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
