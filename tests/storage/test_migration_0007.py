"""Migration 0007 (passkeys) up and down on SQLite and PostgreSQL, from a database at 0006:
the table appears with its unique credential id, and goes away again."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from tests.support.migrations import to_revision as _to
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine

ROW = (
    "INSERT INTO ts_passkeys (id, user_id, credential_id, public_key, sign_count, name,"
    " transports, backup_eligible, user_verified, created_at) VALUES"
    " (:id, 'u', 'cred-1', 'pk', 0, 'Laptop', 'internal', false, true, 1)"
)


async def test_0007_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0009", down=True))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "ts_passkeys" not in tables
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.begin() as conn:
            await conn.execute(text(ROW), {"id": "p1"})
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text(ROW), {"id": "p2"})  # the same credential id
        async with engine.begin() as conn:
            await conn.run_sync(_to("0009", down=True))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "ts_passkeys" not in tables
        assert "ts_mfa_totp" in tables
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
    finally:
        await engine.dispose()
