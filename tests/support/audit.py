"""The audit trail as written to the database."""

from __future__ import annotations

from sqlalchemy import text

from tests.server.harness import ServerEnv


async def events(env: ServerEnv) -> list[tuple[str, str | None, str | None]]:
    await env.app.state.runtime.audit.flush()
    async with env.admin.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event, client_id, user_id FROM ts_audit_events ORDER BY id")
        )
        return [(r[0], r[1], r[2]) for r in rows]
