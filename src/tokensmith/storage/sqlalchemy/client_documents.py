"""Fetched Client ID Metadata Documents in SQL, until their cache lifetime ends (shared by every
process; ``tokensmith db prune`` removes expired ones)."""

from __future__ import annotations

import contextlib

from sqlalchemy import delete, select

from tokensmith.core.ports import Conflict
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlClientDocumentStore(SqlStore):
    async def get(self, url: str, now: int) -> bytes | None:
        d = t.client_documents
        row = await self._one(select(d.c.body).where(d.c.url == url, d.c.expires_at > now))
        return row["body"].encode() if row is not None else None

    async def put(self, url: str, body: bytes, expires_at: int) -> None:
        d = t.client_documents
        values = {"url": url, "body": body.decode(), "expires_at": expires_at}
        await self._conn.execute(delete(d).where(d.c.url == url))
        with contextlib.suppress(Conflict):  # another process stored it meanwhile: as fresh
            await self._insert(d, values)
