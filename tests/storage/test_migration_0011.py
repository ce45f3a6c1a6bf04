"""Migration 0011 (the security stamp of a sign-in's password step) up and down on SQLite and
PostgreSQL, from a database at 0010 with a sign-in waiting for its second step: it gets no stamp
(NULL), which the second step refuses (``Interaction.pending_stamp`` ``None``)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.support.migrations import to_revision as _to
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine
from tokensmith.storage.sqlalchemy.interactions import SqlInteractionStore

REQUEST = (
    '{"client_id":"c1","redirect_uri":"https://rp.test/cb","redirect_uri_sent":true,'
    '"scopes":["openid"],"state":null,"code_challenge":"x","audience":"","prompt":[]}'
)
PENDING = (
    "INSERT INTO ts_interactions (id, browser_digest, request, created_at, expires_at, "
    "pending_user_id, pending_auth_time) VALUES ('ix1', 'b', :request, 1, 2000000000, 'u1', 1)"
)


async def test_0011_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0010", down=True))
            await conn.execute(text(PENDING), {"request": REQUEST})
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            pending = await SqlInteractionStore(conn).get("ix1", 2)
        assert pending is not None
        assert (pending.pending_user_id, pending.pending_stamp) == ("u1", None)
        async with engine.begin() as conn:
            await conn.run_sync(_to("0010", down=True))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("ts_interactions")}
            )
            kept = (
                await conn.execute(text("SELECT pending_user_id FROM ts_interactions"))
            ).scalar()
        assert "pending_stamp" not in columns
        assert kept == "u1"
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
