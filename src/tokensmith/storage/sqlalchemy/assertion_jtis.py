"""The replay cache of client-assertion ``jti``s (RFC 7523 §3, item 7): the primary key
``(client_id, jti)`` makes a second use insert nothing (``ON CONFLICT DO NOTHING``), so of
concurrent uses exactly one wins."""

from __future__ import annotations

from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlAssertionJtiStore(SqlStore):
    async def use(self, client_id: str, jti: str, expires_at: int) -> bool:
        return await self._insert_new(
            t.used_jtis, {"client_id": client_id, "jti": jti, "expires_at": expires_at}
        )
