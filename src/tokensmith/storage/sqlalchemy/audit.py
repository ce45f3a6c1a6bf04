"""The audit trail in ``ts_audit_events``, written in the background.

``AuditWriter.emit`` (the hook core calls) only puts the event on a bounded queue (never blocks a
response); a task inserts them in batches, one transaction each (``insert_audit_events``). A
full queue drops events and counts them (logged), rather than slowing sign-ins down. On shutdown
the queue is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.audit import AuditEvent
from tokensmith.storage.sqlalchemy import tables as t

log = logging.getLogger("tokensmith.audit")


async def insert_audit_events(engine: AsyncEngine, events: Sequence[AuditEvent]) -> None:
    """Store ``events`` in one transaction (all or none)."""
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


class AuditWriter:
    def __init__(self, engine: AsyncEngine, *, max_queue: int = 10_000, batch: int = 200) -> None:
        self.engine = engine
        self.batch = batch
        self.queue: asyncio.Queue[AuditEvent] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: AuditEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            events = [await self.queue.get()]
            while len(events) < self.batch and not self.queue.empty():
                events.append(self.queue.get_nowait())
            try:
                await self._write(events)
            finally:
                for _ in events:
                    self.queue.task_done()

    async def _write(self, events: list[AuditEvent]) -> None:
        try:
            await insert_audit_events(self.engine, events)
        except Exception:
            log.exception("could not store %d audit events", len(events))

    async def flush(self) -> None:
        """Wait until every event emitted so far is stored (used at shutdown and by tests)."""
        if self._task is not None and not self._task.done():
            await self.queue.join()
            return
        events: list[AuditEvent] = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
            self.queue.task_done()
        if events:
            await self._write(events)

    async def stop(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self.dropped:
            log.warning("%d audit events were dropped (queue full)", self.dropped)
