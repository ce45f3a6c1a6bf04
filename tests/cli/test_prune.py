"""Pruning expired rows in bounded batches (issue 8)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import insert, text

from tests.server.harness import ServerEnv
from tests.support.cli import Cli
from tests.support.clients import start
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.audit import AuditEvent
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.engine import create_engine

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


# -- audit retention (round two, operational defaults) -------------------------------------------

DAY = 86400
KEPT_TABLES = (
    "ts_users",
    "ts_clients",
    "ts_apis",
    "ts_signing_keys",
    "ts_server_secrets",
    "ts_consents",
)


async def audit_times(env: ServerEnv) -> list[int]:
    await env.app.state.runtime.audit.flush()
    async with env.admin.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT at FROM ts_audit_events ORDER BY at"))
        return [int(at) for at in rows.scalars()]


async def emit_at(env: ServerEnv, *times: int) -> None:
    """Audit events stamped at ``times``, written (the writer is asynchronous: flushed here, so
    that a prune that follows sees them)."""
    for at in times:
        env.app.state.runtime.audit.emit(AuditEvent(event="login.failed", at=at, user_id="u"))
    await env.app.state.runtime.audit.flush()


async def test_audit_events_older_than_the_retention_are_pruned(server_env: ServerEnv) -> None:
    env = server_env
    assert env.settings.audit_retention_days == 365
    now = int(env.clock())
    retention = 365 * DAY
    await emit_at(env, now - retention - 1, now - retention, now - 10, now)
    report = await env.admin.prune()
    assert report.deleted["ts_audit_events"] == 1
    assert await audit_times(env) == [now - retention, now - 10, now]


async def test_audit_trail_of_real_sign_ins_is_kept_for_a_year(server_env: ServerEnv) -> None:
    env = server_env
    await start(env)  # sign-in, consent, tokens: audit events stamped by the server's clock
    written = await audit_times(env)
    assert written
    env.clock.advance(364 * DAY)
    report = await env.admin.prune()
    assert report.deleted["ts_audit_events"] == 0
    assert await audit_times(env) == written
    env.clock.advance(2 * DAY)
    report = await env.admin.prune()
    assert report.deleted["ts_audit_events"] == len(written)
    assert await audit_times(env) == []


async def test_audit_retention_zero_keeps_events_forever(
    database_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=database_url,
        audit_retention_days=0,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        now = int(clock())
        await emit_at(env, now - 3650 * DAY, now)
        report = await env.admin.prune()
        assert "ts_audit_events" not in report.deleted
        assert await audit_times(env) == [now - 3650 * DAY, now]


async def test_audit_pruning_is_bounded_per_run(server_env: ServerEnv) -> None:
    env = server_env
    now = int(env.clock())
    await emit_at(env, *(now - 400 * DAY + i for i in range(3)))
    await audit_times(env)
    first = await env.admin.prune(batch=1, max_batches=2)
    assert first.deleted["ts_audit_events"] == 2
    assert not first.complete
    second = await env.admin.prune(batch=1, max_batches=2)
    assert second.deleted["ts_audit_events"] == 1
    assert second.complete


async def test_pruning_inside_serve_applies_the_audit_retention(
    database_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=database_url,
        prune_interval=1,
        audit_retention_days=30,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        now = int(clock())
        await emit_at(env, now - 31 * DAY, now - 29 * DAY)
        assert len(await audit_times(env)) == 2
        for _ in range(100):  # the scheduled prune runs every second: at most ~10 s
            if len(await audit_times(env)) == 1:
                break
            await asyncio.sleep(0.1)
        assert await audit_times(env) == [now - 29 * DAY]


async def test_prune_deletes_nothing_but_expired_rows(server_env: ServerEnv) -> None:
    """Users, clients, APIs, keys, the pepper and consents never expire: ten years on, pruning
    leaves them all, and a live sign-in's rows survive a prune right after it."""
    env = server_env
    await start(env, refresh_token_idle_ttl=3600, refresh_token_absolute_ttl=3600)
    kept = {table: await env.count(table) for table in KEPT_TABLES}
    assert all(kept.values()), kept
    live = await counts(env)
    await env.admin.prune()
    assert await counts(env) == live
    env.clock.advance(3650 * DAY)
    await env.admin.prune()
    assert {table: await env.count(table) for table in KEPT_TABLES} == kept


async def _insert_audit_events(database_url: str, *times: int) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(t.audit_events),
                [{"at": at, "event": "login.failed", "detail": "{}"} for at in times],
            )
    finally:
        await engine.dispose()


def test_db_prune_reports_the_audit_events_it_removed(database_url: str) -> None:
    now = int(time.time())
    asyncio.run(_insert_audit_events(database_url, now - 400 * DAY, now - 366 * DAY, now))
    cli = Cli(database_url)
    out = cli("db", "prune").stdout.splitlines()
    assert "ts_audit_events: 2 (older than 365 days)" in out
    assert out[-1] == "pruned 2 row(s)"
    again = cli("db", "prune").stdout.splitlines()
    assert "ts_audit_events: 0 (older than 365 days)" in again
    forever = Cli(database_url, TOKENSMITH_AUDIT_RETENTION_DAYS="0")
    out = forever("db", "prune").stdout.splitlines()
    assert "ts_audit_events: kept forever (audit_retention_days is 0)" in out
    assert out[-1] == "pruned 0 row(s)"
