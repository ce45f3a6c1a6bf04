"""Pruning: delete what has expired, in bounded batches, so tables do not grow without limit.

Each table is cleaned with ``DELETE ... WHERE key IN (SELECT key ... LIMIT batch)`` in short
transactions, so a large backlog never holds long locks. Consumed codes are kept an hour after
they expire (replay detection), refresh tokens until they expire (reuse detection), grants until
nothing issued from them can still be used, audit events for their retention period (none when
it is 0: kept forever), dynamically registered clients idle for ``registered_client_idle_days``
(with their consents), used-up or expired initial access tokens. Nothing else is ever deleted
here: static clients, users and keys have their own commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.storage.redis import TOMBSTONE_TTL
from tokensmith.storage.sqlalchemy import tables as t


@dataclass
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    """False when ``max_batches`` stopped a table before it was clean (run again)."""

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


async def _prune_table(
    engine: AsyncEngine,
    table: Table,
    condition: ColumnElement[bool],
    *,
    batch: int,
    max_batches: int,
) -> tuple[int, bool]:
    key = next(iter(table.primary_key.columns))
    total = 0
    for _ in range(max_batches):
        chosen = select(key).where(condition).limit(batch).scalar_subquery()
        async with engine.begin() as conn:
            result = await conn.execute(delete(table).where(key.in_(chosen)))
        total += int(result.rowcount)
        if result.rowcount < batch:
            return total, True
    return total, False


async def prune(
    engine: AsyncEngine,
    *,
    now: int,
    grant_grace: int,
    audit_retention: int,
    registered_client_idle: int = 0,
    batch: int = 1000,
    max_batches: int = 100,
) -> PruneReport:
    """Delete expired rows. ``grant_grace``: seconds after creation before an unused grant
    (no refresh token, no recorded access token left) may go. ``audit_retention``: seconds an
    audit event is kept (0: forever). ``registered_client_idle``: seconds a dynamically
    registered client may go without getting a token before it goes, with its consents (0:
    kept); used-up and expired initial access tokens go too."""
    report = PruneReport()
    rt, at = t.refresh_tokens, t.access_tokens
    targets: list[tuple[Table, ColumnElement[bool]]] = [
        (t.authorization_codes, t.authorization_codes.c.expires_at < now - TOMBSTONE_TTL),
        (t.interactions, t.interactions.c.expires_at < now),
        (t.sessions, t.sessions.c.expires_at < now),
        (t.access_tokens, t.access_tokens.c.expires_at < now),
        (t.revoked_jtis, t.revoked_jtis.c.expires_at < now),
        (t.used_jtis, t.used_jtis.c.expires_at < now),
        (t.refresh_tokens, t.refresh_tokens.c.expires_at < now),
        (t.login_failures, t.login_failures.c.expires_at < now),
        (t.account_tokens, t.account_tokens.c.expires_at < now),
        (t.client_documents, t.client_documents.c.expires_at < now),
        (
            t.grants,
            and_(
                t.grants.c.created_at < now - grant_grace,
                ~exists().where(rt.c.grant_id == t.grants.c.id),
                ~exists().where(at.c.grant_id == t.grants.c.id),
            ),
        ),
    ]
    if audit_retention > 0:
        targets.append((t.audit_events, t.audit_events.c.at < now - audit_retention))
    iat = t.initial_access_tokens.c
    targets.append((t.initial_access_tokens, or_(iat.expires_at < now, iat.uses_left <= 0)))
    if registered_client_idle > 0:
        c = t.clients.c
        stale = and_(
            c.origin == "registered",
            func.coalesce(c.last_used_at, c.created_at) < now - registered_client_idle,
        )
        # their consents first (the consents' key is composite: one statement, not batches)
        async with engine.begin() as conn:
            await conn.execute(
                delete(t.consents).where(
                    t.consents.c.client_id.in_(select(c.client_id).where(stale))
                )
            )
        targets.append((t.clients, stale))
    for table, condition in targets:
        count, done = await _prune_table(
            engine, table, condition, batch=batch, max_batches=max_batches
        )
        report.deleted[table.name] = count
        report.complete = report.complete and done
    return report
