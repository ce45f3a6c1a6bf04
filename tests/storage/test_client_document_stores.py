"""The fetched-metadata-document store (``core.ports.ClientDocumentStore``) on SQLite, PostgreSQL
and PostgreSQL + Redis: a document is kept until its expiry, replaced by a newer one, and
gone once expired."""

from __future__ import annotations

import time

from tokensmith.storage.compose import Database

URL = "https://app.example/client.json"


async def test_a_document_is_kept_until_it_expires_and_replaced(db: Database) -> None:
    now = int(time.time())  # Redis expires keys by the real clock
    async with db.transaction() as s:
        assert await s.client_documents.get(URL, now) is None
        await s.client_documents.put(URL, b'{"client_id": "one"}', now + 60)
    async with db.transaction() as s:
        assert await s.client_documents.get(URL, now) == b'{"client_id": "one"}'
        assert await s.client_documents.get(URL, now + 59) == b'{"client_id": "one"}'
        assert await s.client_documents.get(URL, now + 60) is None
        assert await s.client_documents.get(URL + "x", now) is None
        await s.client_documents.put(URL, b'{"client_id": "two"}', now + 120)
    async with db.transaction() as s:
        assert await s.client_documents.get(URL, now + 100) == b'{"client_id": "two"}'


async def test_a_document_put_in_a_rolled_back_transaction_is_not_kept(db: Database) -> None:
    class Boom(Exception):
        pass

    try:
        async with db.transaction() as s:
            await s.client_documents.put(URL, b"{}", 2_000_000_000)
            raise Boom
    except Boom:
        pass
    async with db.transaction() as s:
        found = await s.client_documents.get(URL, int(time.time()))
    # Redis is not transactional: there the document stays (it is a cache, validated on read)
    assert found in (None, b"{}")
    if db.ephemeral is None:
        assert found is None
