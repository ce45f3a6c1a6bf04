"""The audit trail in ``ts_audit_events``: one batch of events, one transaction.

The server's ``AuditWriter`` queues and batches; this is where a batch is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.audit import AuditEvent
from tokensmith.storage.sqlalchemy import tables as t


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
