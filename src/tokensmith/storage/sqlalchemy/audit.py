"""The audit trail in ``ts_audit_events``, written off the request path.

``AuditWriter.emit`` (the hook core calls) only appends the event to a bounded in-memory queue:
no response waits on the audit trail. A background task stores the queue every
``interval`` seconds (or as soon as ``batch`` events are waiting), ``batch`` events per
statement (PostgreSQL: a ``COPY``; SQLite: an ``INSERT``), one transaction per batch, on the
writer's **own** engine (one connection: on PostgreSQL it never takes a connection from the
requests' pool; on SQLite it is a second connection, so a batch never waits in, or holds up,
the requests' single pooled connection).
A wake-up stores what was queued when it began; events emitted meanwhile wait for the next one.

Cost (issue 17): ~1 µs on the request path (the ``AuditEvent`` and a ``deque.append``), and a
few µs a row in the writer: the rows go to the driver as tuples built once
(``insert_audit_events``), not through SQLAlchemy's per-row parameter processing. On SQLite a
batch is one ``INSERT`` in autocommit mode (the rows as one JSON parameter: one statement text
whatever the batch's size, so the driver keeps one compiled statement, not one per size), handed
to the driver's thread in one call,
so the database's write lock is held only while SQLite stores the rows: every request's
``BEGIN IMMEDIATE`` waits for that lock, polling and sleeping in SQLite's busy handler, and a
writer that held it across trips through a busy event loop, batch after batch, kept requests
waiting for hundreds of milliseconds (the SQLite p99 of issue 17).

Loss policy, stated:

- *Database unavailable*: a batch that could not be stored goes back to the front of the queue
  and is retried with exponential back-off (``retry_initial`` doubling up to ``retry_max``
  seconds); nothing is lost while the queue has room.
- *Queue full* (``max_queue`` events waiting, i.e. a long outage under load): the **oldest**
  events are dropped to make room for new ones; each dropped event is counted (``dropped``,
  ``tokensmith_audit_events_dropped_total`` in ``/metrics``) and the first drop of an outage is
  logged (a warning, then one line with the total when the database is back).
- *Shutdown*: ``stop`` stores everything still queued (the app's lifespan calls it, so
  ``tokensmith serve`` flushes on SIGTERM/SIGINT); if the database stays unavailable for
  ``shutdown_grace`` seconds the rest is counted as dropped and logged as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.core.audit import FORGETTING, PERSONAL_DETAIL, AuditEvent, without_personal_data
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore

log = logging.getLogger("tokensmith.audit")


_COLUMNS = ("at", "event", "client_id", "user_id", "address", "detail")

_encode_detail = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps(detail, separators=(",", ":"))`` without building an encoder per call: the
same text (ASCII, compact), which ``forget_personal_data`` and the readers parse."""


def detail_text(detail: dict[str, str]) -> str:
    """``_encode_detail(detail)``, the stored text, written by orjson where its text is the
    same (a plain ``dict`` of string keys and values, ASCII without DEL, which the standard
    encoder escapes; ~4 x faster, once per audit event): anything else goes to the standard
    encoder."""
    if type(detail) is not dict:  # a subclass may order its items otherwise than orjson reads
        return _encode_detail(detail)
    for key, value in detail.items():
        if type(key) is not str or type(value) is not str:
            return _encode_detail(detail)
    try:
        text = orjson.dumps(detail).decode()
    except orjson.JSONEncodeError:  # a lone surrogate
        return _encode_detail(detail)
    return text if text.isascii() and "\x7f" not in text else _encode_detail(detail)


AuditRow = tuple[int, str, str | None, str | None, str | None, str]


def audit_row(e: AuditEvent) -> AuditRow:
    """The stored columns of ``e`` (``_COLUMNS``), in order."""
    detail = e.detail
    return (
        e.at,
        e.event,
        e.client_id,
        e.user_id,
        e.address,
        detail_text(detail) if detail else "{}",
    )


# SQLite binds at most 999 parameters a statement before 3.32, 32766 since
SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // len(_COLUMNS)


def _sqlite_has_json() -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, an option before)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("SELECT json_extract(value, '$[0]') FROM json_each('[[1]]')")
    except sqlite3.Error:
        return False
    return True


SQLITE_JSON = _sqlite_has_json()
"""Whether a SQLite batch is the one-parameter ``INSERT ... SELECT ... FROM json_each(?)``
(``_sqlite_json_insert``): one statement text for every batch size. Else a multi-row
``INSERT`` per batch size, each of which the driver keeps compiled (128 statements, ~20 MB of
process memory once the batch sizes have varied)."""


@functools.lru_cache(maxsize=2)
def _sqlite_json_insert(dialect: Dialect) -> str:
    """SQLite's ``INSERT`` of a whole batch given as one JSON array of rows (``_json_rows``)."""
    q = dialect.identifier_preparer
    names = ", ".join(q.quote(c) for c in _COLUMNS)
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_COLUMNS)))
    # identifiers from the table's definition, quoted; the rows are the one bound parameter
    table = q.format_table(t.audit_events)
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM json_each(?)"  # noqa: S608


def _json_rows(rows: Sequence[AuditRow]) -> str:
    """``rows`` as one JSON array of arrays. A string that is not valid Unicode (a lone
    surrogate, which SQLite could not store either) has it replaced, not the batch refused."""
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_valid_unicode(rows)).decode()


@functools.lru_cache(maxsize=8)
def _insert_sql(dialect: Dialect, rows: int) -> str:
    """The driver's ``INSERT`` of ``rows`` rows (SQLite: one statement, ``?`` parameters), or of
    one row to be sent with ``executemany`` (PostgreSQL: ``$n`` parameters)."""
    q = dialect.identifier_preparer
    names = ", ".join(q.quote(c) for c in _COLUMNS)
    # identifiers from the table's definition, quoted; every value is a bound parameter
    head = f"INSERT INTO {q.format_table(t.audit_events)} ({names}) VALUES "  # noqa: S608
    if dialect.name == "sqlite":
        one = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
        return head + ", ".join([one] * rows)
    return head + "(" + ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1)) + ")"


async def insert_audit_events(engine: AsyncEngine, events: Sequence[AuditEvent]) -> None:
    """Store ``events`` in one transaction (all or none).

    The rows go to the driver as prebuilt tuples, past SQLAlchemy's per-row parameter
    processing. On PostgreSQL with asyncpg: one binary ``COPY`` in a transaction
    (``_copy_rows``); with another driver, or a batch with a ``FORGETTING`` event, one
    ``executemany`` of the one-row ``INSERT`` in a SQLAlchemy transaction. On SQLite: one
    ``INSERT`` statement (the batch as one JSON parameter, ``SQLITE_JSON``; else one multi-row
    ``INSERT``), which is a transaction by itself (the connection is in autocommit mode;
    ``BEGIN IMMEDIATE`` is SQLAlchemy's), run by the driver's thread in one call: SQLite's write
    lock, which every request's ``BEGIN IMMEDIATE`` waits for, is held only while SQLite stores
    the rows, never while the event loop gets round to the next step of the batch. A SQLite
    batch with a ``FORGETTING`` event, or (without ``SQLITE_JSON``) longer than
    ``SQLITE_ROWS``, is one SQLAlchemy transaction of several statements instead."""
    rows = [audit_row(e) for e in events]
    if not rows:
        return
    forget = [e.user_id for e in events if e.event in FORGETTING and e.user_id is not None]
    sqlite = engine.dialect.name == "sqlite"
    if sqlite and SQLITE_JSON:
        statement, parameters = _sqlite_json_insert(engine.dialect), (_json_rows(rows),)
        if not forget:
            async with engine.connect() as conn:
                driver: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
                await driver.execute_fetchall(statement, parameters)
            return
        async with engine.begin() as conn:
            await conn.exec_driver_sql(statement, parameters)
            for user_id in forget:
                await forget_personal_data(conn, user_id)
        return
    if sqlite and not forget and len(rows) <= SQLITE_ROWS:
        async with engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
            await raw.execute_fetchall(_insert_sql(engine.dialect, len(rows)), _flat(rows))
        return
    if engine.dialect.driver == "asyncpg" and not forget:
        try:
            await _copy_rows(engine, rows)
        except UnicodeEncodeError:
            await _copy_rows(engine, _valid_unicode(rows))
        return
    async with engine.begin() as conn:
        if sqlite:
            for i in range(0, len(rows), SQLITE_ROWS):
                chunk = rows[i : i + SQLITE_ROWS]
                await conn.exec_driver_sql(_insert_sql(engine.dialect, len(chunk)), _flat(chunk))
        else:
            await conn.exec_driver_sql(_insert_sql(engine.dialect, 1), rows)
        for user_id in forget:
            await forget_personal_data(conn, user_id)


async def _copy_rows(engine: AsyncEngine, rows: Sequence[tuple[object, ...]]) -> None:
    """``rows`` into the table in one transaction with PostgreSQL's ``COPY`` (asyncpg's binary
    copy): half the CPU of an ``executemany`` of the one-row ``INSERT`` (issue 17: ~1.6 against
    ~3.4 µs a row, in the process that serves the requests). A string that is not valid Unicode
    (a lone surrogate, which PostgreSQL could not store either) raises ``UnicodeEncodeError``
    before anything is stored: the caller writes the batch again with it replaced, rather than
    have it refused and retried forever ahead of every later event."""
    table = t.audit_events
    async with engine.connect() as conn:
        pg: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's
        async with pg.transaction():
            await pg.copy_records_to_table(
                table.name, schema_name=table.schema, columns=_COLUMNS, records=rows
            )


def _valid_unicode(rows: Sequence[AuditRow]) -> list[tuple[object, ...]]:
    """``rows`` with every string made valid Unicode (a lone surrogate becomes ``?``)."""
    return [
        tuple(v.encode("utf-8", "replace").decode() if isinstance(v, str) else v for v in row)
        for row in rows
    ]


def _flat(rows: Sequence[AuditRow]) -> tuple[object, ...]:
    return tuple(value for row in rows for value in row)


async def forget_personal_data(conn: AsyncConnection, user_id: str) -> int:
    """Remove the client address and the personal detail (``audit.PERSONAL_DETAIL``) from the
    stored events of ``user_id``, keeping the events; the number of events changed."""
    a = t.audit_events
    result = await conn.execute(
        update(a).where(a.c.user_id == user_id, a.c.address.is_not(None)).values(address=None)
    )
    changed = int(result.rowcount)
    rows = await conn.execute(
        select(a.c.id, a.c.detail).where(
            a.c.user_id == user_id,
            or_(*(a.c.detail.contains(f'"{key}"', autoescape=True) for key in PERSONAL_DETAIL)),
        )
    )
    for row in rows.all():
        detail = json.loads(row.detail)
        kept = without_personal_data(detail)
        if kept != detail:
            await conn.execute(
                update(a)
                .where(a.c.id == row.id)
                .values(detail=json.dumps(kept, separators=(",", ":")))
            )
            changed += 1
    return changed


class SqlAuditTrailStore(SqlStore):
    """The stored audit events, in the request's transaction (``ports.AuditTrailStore``)."""

    async def forget_user(self, user_id: str) -> int:
        return await forget_personal_data(self._conn, user_id)


class AuditWriter:
    """See the module docstring. ``engine`` is the writer's own (disposed by ``stop`` when
    ``owns_engine``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval: float = 0.1,
        batch: int = 500,
        max_queue: int = 10_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        shutdown_grace: float = 5.0,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self.max_queue = max_queue
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.shutdown_grace = shutdown_grace
        self.owns_engine = owns_engine
        self.dropped = 0
        """Events lost: dropped from a full queue, or not stored before shutdown."""
        self.written = 0
        self.failures = 0
        """Batches the database refused (each one retried)."""
        self._events: deque[AuditEvent] = deque()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self._dropping_since: int | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._events)

    def emit(self, event: AuditEvent) -> None:
        """Queue ``event`` (never blocks, never raises); the oldest goes when the queue is full."""
        events = self._events
        if len(events) >= self.max_queue:
            events.popleft()
            self._note_drop(1)
        events.append(event)
        if len(events) >= self.batch:
            self._full.set()

    def _note_drop(self, count: int) -> None:
        if self._dropping_since is None:
            self._dropping_since = self.dropped
            log.warning(
                "the audit queue is full (%d events) and the database does not take them: "
                "dropping the oldest events",
                self.max_queue,
            )
        self.dropped += count

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="tokensmith-audit-writer")

    async def _run(self) -> None:
        delay = self.retry_initial
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._full.wait()
            self._full.clear()
            if await self._drain():
                delay = self.retry_initial
                continue
            # the database refused a batch: back off (``stop`` wakes us early)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    while not self._closing:
                        await self._full.wait()
                        self._full.clear()
            delay = min(delay * 2, self.retry_max)

    async def _drain(self) -> bool:
        """Store the events queued when called, one transaction per ``batch``; False (the failed
        batch back at the front of the queue) if the database refused one.

        Events emitted while it writes wait for the next tick (or a full ``batch``): chasing
        them would write back to back in small batches, paying a transaction's fixed cost for
        a few events each, and on SQLite would hold the write lock almost all the time, so a
        request's ``BEGIN IMMEDIATE`` (whose busy handler polls, sleeping between tries) kept
        losing it to the writer for hundreds of milliseconds."""
        async with self._lock:
            left = len(self._events)
            while left > 0 and self._events:
                count = min(self.batch, left, len(self._events))
                left -= count
                batch = [self._events.popleft() for _ in range(count)]
                try:
                    await insert_audit_events(self.engine, batch)
                except BaseException as exc:
                    self._requeue(batch)
                    if not isinstance(exc, Exception):
                        raise
                    self.failures += 1
                    log.warning(
                        "could not store %d audit events (%s: %s); %d queued, will retry",
                        count,
                        type(exc).__name__,
                        exc,
                        len(self._events),
                    )
                    return False
                self.written += count
                if self._dropping_since is not None:
                    log.warning(
                        "audit events are stored again; %d were dropped meanwhile",
                        self.dropped - self._dropping_since,
                    )
                    self._dropping_since = None
        return True

    def _requeue(self, batch: list[AuditEvent]) -> None:
        """Put a batch that was not stored back in front; beyond ``max_queue`` the oldest go."""
        self._events.extendleft(reversed(batch))
        excess = len(self._events) - self.max_queue
        if excess > 0:
            for _ in range(excess):
                self._events.popleft()
            self._note_drop(excess)

    async def flush(self) -> bool:
        """Store every event emitted so far (tests, and ``stop``); False if the database
        refused (the events stay queued)."""
        return await self._drain()

    async def stop(self) -> None:
        """Stop the background task and store what is queued, retrying for up to
        ``shutdown_grace`` seconds; what is still queued then is lost (counted, logged)."""
        self._closing = True
        self._full.set()
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await task
            except Exception:  # pragma: no cover - _run handles database errors itself
                log.exception("the audit writer failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        delay = min(self.retry_initial, 0.25)
        while not await self._drain() or self._events:
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)
        if self._events:
            lost = len(self._events)
            self._events.clear()
            self.dropped += lost
            log.error("%d audit events could not be stored before shutdown and are lost", lost)
        if self.dropped:
            log.warning("%d audit events were dropped in this process's lifetime", self.dropped)
        if self.owns_engine:
            await self.engine.dispose()
