"""Migration 0005 adds ``ts_account_tokens`` (the links of ``core.self_service``) and its
downgrade removes it again, leaving the rest of the schema and its rows as they were. Run on
SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from tests.support.migrations import to_revision
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _indexes(connection: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(connection).get_indexes("ts_account_tokens")}


async def test_0005_adds_the_account_tokens_table_and_removes_it_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            assert "ts_account_tokens" in await conn.run_sync(_tables)
            assert await conn.run_sync(_indexes) == {
                "ix_ts_account_tokens_user_id",
                "ix_ts_account_tokens_expires_at",
            }
            await conn.execute(
                text(
                    "INSERT INTO ts_users (id, username, email, email_verified, name, "
                    "password_hash, disabled, created_at, updated_at) VALUES "
                    "('u1', 'alice', 'alice@example.com', false, NULL, NULL, false, 1, 1)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO ts_account_tokens (digest, purpose, email, user_id, data, "
                    "created_at, expires_at, used_at) VALUES "
                    "('d1', 'reset_password', 'alice@example.com', 'u1', '{}', 1, 2, NULL)"
                )
            )
            await conn.run_sync(to_revision("0003", down=True))
            assert "ts_account_tokens" not in await conn.run_sync(_tables)
            users = (await conn.execute(text("SELECT username FROM ts_users"))).scalars().all()
            assert users == ["alice"]
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT COUNT(*) FROM ts_account_tokens"))).scalar()
            assert count == 0
    finally:
        await engine.dispose()
