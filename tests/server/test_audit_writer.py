"""The audit writer off the request path (issue 17, item 2): batches on a timer, one transaction
per batch, its own connection, a bounded queue that drops the oldest events during a database
outage (counted in /metrics, logged), and nothing lost when the server stops."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.live import LiveServer, live_server
from tests.server.harness import ServerEnv
from tests.support.clients import machine
from tokensmith.core.audit import AuditEvent
from tokensmith.storage.sqlalchemy import audit as audit_module
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.audit import AuditWriter
from tokensmith.storage.sqlalchemy.engine import create_engine

AWAY = "ts_audit_events_away"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def stored(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT client_id FROM ts_audit_events ORDER BY id"))
        return [r[0] for r in rows]


async def rename(engine: AsyncEngine, old: str, new: str) -> None:
    """A real failure of the database for the writer: its table is not there."""
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def numbered(n: int, start: int = 0) -> list[AuditEvent]:
    return [AuditEvent("token.issued", 1, client_id=f"c{i}") for i in range(start, start + n)]


async def until(condition: Any, *, what: str) -> None:
    """Poll ``condition`` (no timing is asserted: a generous bound only catches a hang)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_one_transaction_per_batch(engine: AsyncEngine) -> None:
    """Each batch is stored all or none: a batch the database refuses (here a row without its
    event name) stores none of its rows and stays queued, after the batch before it."""
    writer = AuditWriter(engine, batch=100, interval=3600)
    events = numbered(250)
    events[150] = AuditEvent(None, 1, client_id="bad")  # type: ignore[arg-type]
    for e in events:
        writer.emit(e)
    assert not await writer.flush()
    assert await stored(engine) == [f"c{i}" for i in range(100)]
    assert (writer.written, writer.queued, writer.failures) == (100, 150, 1)


async def test_a_batch_is_one_transaction_on_postgres(engine: AsyncEngine) -> None:
    """On PostgreSQL each batch is one transaction of its own: the rows of a batch, and only
    they, share the id of the transaction that wrote them (``xmin``)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores a batch in one autocommit statement (next test)")
    writer = AuditWriter(engine, batch=100, interval=3600)
    for e in numbered(250):
        writer.emit(e)
    assert await writer.flush()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT xmin::text, client_id FROM ts_audit_events ORDER BY id")
            )
        ).all()
    assert [r[1] for r in rows] == [f"c{i}" for i in range(250)]
    batches = [[r[1] for r in rows if r[0] == xid] for xid in dict.fromkeys(r[0] for r in rows)]
    assert [len(b) for b in batches] == [100, 100, 50]
    assert writer.written == 250


async def test_a_postgres_batch_is_one_copy(engine: AsyncEngine) -> None:
    """On PostgreSQL (asyncpg) a batch is written with one ``COPY``, not a statement a row."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's COPY")
    import asyncpg

    copies: list[int] = []
    original = asyncpg.Connection.copy_records_to_table

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        copies.append(len(list(kwargs["records"])))
        return await original(self, *args, **kwargs)

    writer = AuditWriter(engine, batch=100, interval=3600)
    for e in numbered(150):
        writer.emit(e)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg.Connection, "copy_records_to_table", counted)
        assert await writer.flush()
    assert copies == [100, 50]
    assert await stored(engine) == [f"c{i}" for i in range(150)]


@pytest.fixture
async def traced_sqlite(sqlite_url: str) -> AsyncIterator[tuple[AsyncEngine, list[str]]]:
    """A SQLite engine of one connection, and the statements its driver runs from now on
    (their first words; not the pool's ROLLBACK when a connection comes back)."""
    engine = create_engine(sqlite_url, pool_size=1, max_overflow=0)
    statements: list[str] = []

    def trace(sql: str) -> None:
        if not sql.startswith("ROLLBACK"):
            statements.append(sql.split(" (")[0])

    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.set_trace_callback(trace)
    yield engine, statements
    await engine.dispose()


async def test_a_sqlite_batch_is_one_statement_in_the_drivers_thread(
    traced_sqlite: tuple[AsyncEngine, list[str]],
) -> None:
    """On SQLite a batch is a single multi-row INSERT, sent to the driver in one call, with no
    BEGIN IMMEDIATE ... COMMIT around it: the write lock that requests wait for is held only
    while SQLite stores the rows, not across trips through a busy event loop."""
    engine, statements = traced_sqlite
    writer = AuditWriter(engine, batch=500, interval=3600)
    for e in numbered(250):
        writer.emit(e)
    assert await writer.flush()
    assert statements == ["INSERT INTO ts_audit_events"]
    assert await stored(engine) == [f"c{i}" for i in range(250)]


async def test_a_sqlite_batch_longer_than_one_statement_is_one_transaction(
    traced_sqlite: tuple[AsyncEngine, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SQLite's JSON functions (each batch a multi-row INSERT), beyond ``SQLITE_ROWS``
    rows (SQLite before 3.32 binds at most 999 parameters) a batch is several INSERTs inside one
    BEGIN IMMEDIATE ... COMMIT."""
    engine, statements = traced_sqlite
    monkeypatch.setattr(audit_module, "SQLITE_JSON", False)
    monkeypatch.setattr(audit_module, "SQLITE_ROWS", 40)
    writer = AuditWriter(engine, batch=100, interval=3600)
    for e in numbered(100):
        writer.emit(e)
    assert await writer.flush()
    assert statements == ["BEGIN IMMEDIATE", *["INSERT INTO ts_audit_events"] * 3, "COMMIT"]
    assert await stored(engine) == [f"c{i}" for i in range(100)]


@pytest.mark.parametrize("sqlite_json", [True, False], ids=["json-rows", "multi-row"])
async def test_stored_rows_are_those_of_sqlalchemy_core(
    engine: AsyncEngine, sqlite_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver-level INSERT stores what the Core ``insert`` with ``json.dumps`` stored: the
    same columns, NULLs, timestamps and detail text (ASCII-escaped, compact). On SQLite, both
    ways a batch can be written: the rows as one JSON parameter, and a multi-row INSERT."""
    if not sqlite_json:
        if engine.dialect.name != "sqlite":
            pytest.skip("the multi-row INSERT is SQLite's fallback")
        monkeypatch.setattr(audit_module, "SQLITE_JSON", False)
    events = [
        AuditEvent("token.issued", 1_765_000_000, client_id="c1", detail={"grant_type": "x"}),
        AuditEvent("login.failed", 2**40, address="2001:db8::1", detail={}),
        AuditEvent(
            "passkey.registered",
            3,
            user_id="u1",
            detail={"name": 'Zoë\'s "phone" \\ ☎', "n": "1"},
        ),
        AuditEvent("logout", 4, client_id=None, user_id="u2", address="203.0.113.9"),
        AuditEvent("token.issued", 5, detail={"agent": "a\x7fb\x1fc\nd\t/", "k\x7f": "v"}),
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.audit_events),
            [
                {
                    "at": e.at,
                    "event": e.event,
                    "client_id": e.client_id,
                    "user_id": e.user_id,
                    "address": e.address,
                    "detail": json.dumps(e.detail, separators=(",", ":")),
                }
                for e in events
            ],
        )
    writer = AuditWriter(engine, interval=3600)
    for e in events:
        writer.emit(e)
    assert await writer.flush()
    columns = "at, event, client_id, user_id, address, detail"
    async with engine.connect() as conn:
        rows = [
            tuple(r)
            for r in await conn.execute(text(f"SELECT {columns} FROM ts_audit_events ORDER BY id"))
        ]
    assert rows[5:] == rows[:5]
    assert [json.loads(r[5]) for r in rows[5:]] == [e.detail for e in events]


class _Reordered(dict[str, str]):
    """A dict whose items come out in another order than they were stored (orjson reads the
    storage, ``json`` the ``items``)."""

    def items(self) -> Any:
        return reversed(list(super().items()))


@pytest.mark.parametrize(
    "detail",
    [
        {"grant_type": "client_credentials"},
        {},
        {"del": "a\x7fb", "\x7f": "k"},
        {"controls": "\x00\x08\x0b\x0c\x1f\r\n\t", "quote": '"\\/'},
        {"name": "Zoë ☎ \u2028 😀"},
        {"lone": "\ud800"},
        {"n": 1, "f": 1e16, "b": True, "none": None},  # not the str values of the type hint
        {"nan": float("nan")},  # orjson writes null
        {"small": 1e-7},  # orjson writes 1e-7
        {"big": 2**70},  # orjson refuses it
        collections.OrderedDict([("b", "2"), ("a", "1")]),  # a dict subclass
        _Reordered(a="1", b="2"),
    ],
)
def test_detail_text_is_the_standard_encoders(detail: dict[str, Any]) -> None:
    """The stored detail is ``json.dumps(detail, separators=(",", ":"))``, ASCII-escaped,
    whichever encoder wrote it (orjson where its text is the same)."""
    assert audit_module.detail_text(detail) == json.dumps(detail, separators=(",", ":"))


async def test_every_sqlite_batch_is_the_same_statement(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of every size run one statement text (the rows as one JSON parameter), so the
    driver keeps one compiled statement. A multi-row INSERT per batch size filled sqlite3's
    cache of 128 compiled statements, ~20 MB of the server's memory under load."""
    assert audit_module.SQLITE_JSON  # the SQLite of every supported platform has JSON
    sent: list[str] = []
    original = aiosqlite.Connection.execute_fetchall

    async def recorded(self: aiosqlite.Connection, sql: str, parameters: Any = None) -> Any:
        sent.append(sql)
        return await original(self, sql, parameters)

    monkeypatch.setattr(aiosqlite.Connection, "execute_fetchall", recorded)
    engine = create_engine(sqlite_url, pool_size=1, max_overflow=0)
    try:
        writer = AuditWriter(engine, batch=1000, interval=3600)
        total = 0
        for size in (1, 2, 3, 17, 250, 501, 999):
            for e in numbered(size, start=total):
                writer.emit(e)
            total += size
            assert await writer.flush()
        assert len(sent) == 7
        assert len(set(sent)) == 1
        assert await stored(engine) == [f"c{i}" for i in range(total)]
    finally:
        await engine.dispose()


async def test_a_string_the_database_cannot_store_does_not_block_the_trail(
    engine: AsyncEngine,
) -> None:
    """A lone surrogate (not valid Unicode) in a column is replaced: the batch is stored, not
    refused and retried forever ahead of every later event (SQLite and PostgreSQL)."""
    writer = AuditWriter(engine, interval=3600)
    writer.emit(AuditEvent("client.failed", 1, client_id="bad\ud800id"))
    writer.emit(AuditEvent("token.issued", 2, client_id="good"))
    assert await writer.flush()
    assert await stored(engine) == ["bad?id", "good"]


async def test_events_emitted_during_a_write_wait_for_the_next_batch(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain stores what was queued when it began: events emitted meanwhile wait for the next
    tick instead of being chased in back-to-back small batches (which cost a transaction each
    and, on SQLite, kept the write lock from the requests)."""
    writer = AuditWriter(engine, interval=3600)
    batches: list[int] = []
    original = audit_module.insert_audit_events

    async def insert_then_emit(engine_: AsyncEngine, events: list[AuditEvent]) -> None:
        batches.append(len(events))
        for e in numbered(2, start=10):
            writer.emit(e)
        await original(engine_, events)

    monkeypatch.setattr(audit_module, "insert_audit_events", insert_then_emit)
    for e in numbered(3):
        writer.emit(e)
    assert await writer.flush()
    assert batches == [3]
    assert (writer.written, writer.queued) == (3, 2)
    monkeypatch.setattr(audit_module, "insert_audit_events", original)
    assert await writer.flush()
    assert await stored(engine) == ["c0", "c1", "c2", "c10", "c11"]


async def test_events_are_written_on_the_timer_without_a_flush(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, interval=0.05, batch=500)
    writer.start()
    try:
        for e in numbered(3):
            writer.emit(e)
        await until(lambda: writer.written == 3, what="the timer wrote the events")
        assert await stored(engine) == ["c0", "c1", "c2"]
    finally:
        await writer.stop()


async def test_outage_retries_then_drops_the_oldest(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage the events wait and are retried with back-off; beyond the queue's bound
    the oldest go (counted and logged); when the database is back the rest is stored in order."""
    caplog.set_level(logging.WARNING, logger="tokensmith.audit")
    writer = AuditWriter(
        engine, interval=0.01, batch=2, max_queue=5, retry_initial=0.01, retry_max=0.05
    )
    await rename(engine, "ts_audit_events", AWAY)
    writer.start()
    try:
        for e in numbered(3):
            writer.emit(e)
        await until(lambda: writer.failures >= 2, what="the writer retried")
        assert writer.dropped == 0
        assert writer.queued == 3
        for e in numbered(5, start=3):
            writer.emit(e)
        assert writer.dropped == 3
        assert writer.queued == 5
        assert "dropping the oldest events" in caplog.text
        await rename(engine, AWAY, "ts_audit_events")
        await until(lambda: writer.queued == 0, what="the queue was stored after the outage")
    finally:
        await writer.stop()
    assert await stored(engine) == ["c3", "c4", "c5", "c6", "c7"]
    assert "3 were dropped meanwhile" in caplog.text
    assert writer.dropped == 3


async def test_stop_flushes_what_is_queued(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, interval=3600)
    writer.start()
    for e in numbered(7):
        writer.emit(e)
    await writer.stop()
    assert await stored(engine) == [f"c{i}" for i in range(7)]


async def test_stop_during_an_outage_counts_what_is_lost(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(engine, interval=3600, retry_initial=0.01, shutdown_grace=0.1)
    await rename(engine, "ts_audit_events", AWAY)
    writer.start()
    for e in numbered(4):
        writer.emit(e)
    await writer.stop()
    assert writer.dropped == 4
    assert "4 audit events could not be stored before shutdown" in caplog.text


async def test_writer_has_its_own_connection(server_env: ServerEnv) -> None:
    """A batch does not wait for a connection of the requests' pool: with every one of them
    checked out (SQLite has one), the writer still stores its events."""
    runtime = server_env.app.state.runtime
    engine: AsyncEngine = runtime.db.engine
    pool = engine.pool
    size = pool.size() + max(pool._max_overflow, 0)  # type: ignore[attr-defined]
    held = [await engine.connect() for _ in range(size)]
    try:
        for e in numbered(2):
            runtime.server.audit(e)
        assert await asyncio.wait_for(runtime.audit.flush(), 30)
    finally:
        for conn in held:
            await conn.close()
    assert runtime.audit.engine is not engine
    assert (await stored(engine))[-2:] == ["c0", "c1"]


async def test_dropped_events_are_in_the_metrics(server_env: ServerEnv) -> None:
    env = server_env
    client = await machine(env)
    writer = env.app.state.runtime.audit
    writer.max_queue = 2
    await rename(env.admin.db.engine, "ts_audit_events", AWAY)
    try:
        for _ in range(3):
            response = await env.token(client, {"grant_type": "client_credentials"})
            assert response.status_code == 200  # the outage never reaches the response
        assert not await writer.flush()
        text_ = (await env.http.get("/metrics")).text
        assert "tokensmith_audit_events_dropped_total 1.0" in text_
        assert "tokensmith_audit_events_queued 2.0" in text_
    finally:
        await rename(env.admin.db.engine, AWAY, "ts_audit_events")
    assert await writer.flush()
    assert "tokensmith_audit_events_written_total 2.0" in (await env.http.get("/metrics")).text


def worker_pids(pid: int) -> set[int]:
    """The worker processes uvicorn spawned for ``pid`` (Linux; not multiprocessing's resource
    tracker, its other child)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = {int(p) for p in children.read_text().split()} if children.exists() else set()
    return {p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}


def frozen_processes(server: LiveServer) -> int:
    """How many of the server's processes logged their start-up frozen (``gc_freeze``)."""
    return server.log_path.read_text().count("left out of later garbage collections")


@pytest.mark.parametrize("workers", [1, 2])
def test_no_event_lost_when_serve_stops_right_after_requests(tmp_path: Path, workers: int) -> None:
    """A real ``tokensmith serve`` with a timer far away, stopped (SIGTERM) right after its last
    answer: every token it issued has its audit event (flushed in the lifespan's shutdown).
    With ``--workers 2``: two worker processes serve the port (each request on a connection of
    its own), SIGTERM stops both, each flushing what it queued, and the server exits."""
    requests = 25
    serve_args = ("--workers", str(workers)) if workers > 1 else ()
    with live_server(
        tmp_path, audit_flush_interval="60", log_level="INFO", serve_args=serve_args
    ) as server:
        children = worker_pids(server.process.pid)
        if workers > 1:
            assert len(children) == workers, server.log()
        # serve's default gc_freeze reaches every process that serves (the workers through
        # their environment), at the end of each one's start-up
        deadline = time.monotonic() + 30
        while (frozen := frozen_processes(server)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        assert frozen == workers, server.log()
        server.create_api("https://api.example", ("docs:read",))
        client = server.create_client(
            "worker",
            grants=("client_credentials",),
            scopes=("docs:read",),
            api="https://api.example",
        )
        auth = (client["client_id"], client["client_secret"])
        fresh = httpx.Limits(max_keepalive_connections=0)  # a connection per request
        with httpx.Client(base_url=server.base_url, timeout=30, limits=fresh) as http:
            for _ in range(requests):
                response = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
                assert response.status_code == 200, response.text
        server.process.terminate()  # uvicorn runs the lifespan's shutdown, then exits
        # uvicorn re-raises the SIGTERM it handled once shut down: -15, or 0 (the parent of
        # --workers); never a kill's -9
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM), server.log()
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)  # every worker stopped
    with sqlite3.connect(tmp_path / "tokensmith.db") as db:
        (issued,) = db.execute(
            "SELECT COUNT(*) FROM ts_audit_events WHERE event = 'token.issued'"
        ).fetchone()
    assert issued == requests, server.log()


async def test_an_account_deletion_strips_the_users_earlier_events_queued_or_stored(
    engine: AsyncEngine,
) -> None:
    """The deletion's transaction strips what is stored; events of the user still queued in
    this process are stored before the deletion's own event, which strips them then."""
    writer = AuditWriter(engine, interval=3600)
    writer.emit(AuditEvent("login.succeeded", 1, user_id="u1", address="203.0.113.7"))
    writer.emit(AuditEvent("login.succeeded", 1, user_id="u2", address="203.0.113.8"))
    writer.emit(AuditEvent("passkey.registered", 1, user_id="u1", detail={"name": "Alice's phone"}))
    writer.emit(AuditEvent("account.deleted", 2, user_id="u1"))
    assert await writer.flush()
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT user_id, event, address, detail FROM ts_audit_events ORDER BY id")
        )
        assert [tuple(r) for r in rows] == [
            ("u1", "login.succeeded", None, "{}"),
            ("u2", "login.succeeded", "203.0.113.8", "{}"),
            ("u1", "passkey.registered", None, "{}"),
            ("u1", "account.deleted", None, "{}"),
        ]
