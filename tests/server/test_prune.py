"""Pruning expired rows in bounded batches (issue 8)."""

from __future__ import annotations

from sqlalchemy import text

from tests.server.harness import ServerEnv
from tests.server.test_refresh import start

TABLES = (
    "ts_authorization_codes",
    "ts_interactions",
    "ts_sessions",
    "ts_access_tokens",
    "ts_refresh_tokens",
    "ts_grants",
)


async def counts(env: ServerEnv) -> dict[str, int]:
    async with env.admin.db.engine.connect() as conn:
        return {
            table: int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
            for table in TABLES
        }


async def test_prune_keeps_live_rows_and_deletes_expired_ones(server_env: ServerEnv) -> None:
    env = server_env
    client, _ = await start(env, refresh_token_idle_ttl=3600, refresh_token_absolute_ttl=3600)
    await env.start_authorize(env.browser(), client)  # a pending login transaction
    before = await counts(env)
    assert all(before[t] >= 1 for t in TABLES)
    report = await env.admin.prune()
    assert report.total == 0
    assert await counts(env) == before
    env.clock.advance(30 * 86400)
    report = await env.admin.prune()
    assert report.complete
    assert await counts(env) == dict.fromkeys(TABLES, 0)
    assert report.deleted["ts_refresh_tokens"] == 1


async def test_prune_is_bounded_per_run(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    for _ in range(3):
        await env.start_authorize(env.browser(), client)
    env.clock.advance(86400)
    first = await env.admin.prune(batch=1, max_batches=2)
    assert first.deleted["ts_interactions"] == 2
    assert not first.complete
    second = await env.admin.prune(batch=1, max_batches=2)
    assert second.deleted["ts_interactions"] == 1
    assert second.complete
