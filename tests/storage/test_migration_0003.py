"""Migration 0003: existing APIs are closed to dynamic clients and existing clients are static, and
the kept-metadata-documents table appears; the downgrade drops them and the clients the operator
did not make (the old code would take them for static ones). Run on SQLite and PostgreSQL, from a
database at 0002."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from tests.support.migrations import CLIENT, to_revision
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine

API = "https://api.old.test"


async def _columns(conn: Any, table: str) -> set[str]:
    def names(sync: Connection) -> set[str]:
        from sqlalchemy import inspect

        return {c["name"] for c in inspect(sync).get_columns(table)}

    result: set[str] = await conn.run_sync(names)
    return result


async def _tables(conn: Any) -> set[str]:
    def names(sync: Connection) -> set[str]:
        from sqlalchemy import inspect

        return set(inspect(sync).get_table_names())

    result: set[str] = await conn.run_sync(names)
    return result


async def test_0003_marks_existing_rows_static_and_closed_and_goes_back(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0002", down=True))
            assert "origin" not in await _columns(conn, "ts_clients")
            assert "dynamic_clients" not in await _columns(conn, "ts_apis")
            assert "ts_client_documents" not in await _tables(conn)
            await conn.execute(
                text(
                    "INSERT INTO ts_apis (identifier, name, scopes, scope_descriptions, "
                    "created_at) VALUES (:api, 'Old', 'docs:read', '{}', 1)"
                ),
                {"api": API},
            )
            await conn.execute(text(CLIENT.format(extra="", values="")), {"id": "old", "api": API})
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            apis = (
                await conn.execute(text("SELECT identifier, dynamic_clients FROM ts_apis"))
            ).all()
            assert [(a, bool(d)) for a, d in apis] == [(API, False)]
            origins = (await conn.execute(text("SELECT client_id, origin FROM ts_clients"))).all()
            assert [tuple(r) for r in origins] == [("old", "static")]
            assert "ts_client_documents" in await _tables(conn)
            # a dynamic client with a consent, to see the downgrade drop both
            await conn.execute(
                text(CLIENT.format(extra=", origin", values=", 'metadata_document'")),
                {"id": "https://app.test/client.json", "api": ""},
            )
            for client_id in ("old", "https://app.test/client.json"):
                await conn.execute(
                    text(
                        "INSERT INTO ts_consents (user_id, client_id, api, scope, granted_at) "
                        "VALUES ('u1', :client, :api, 'openid', 7)"
                    ),
                    {"client": client_id, "api": API},
                )
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0002", down=True))
            assert "origin" not in await _columns(conn, "ts_clients")
            assert "dynamic_clients" not in await _columns(conn, "ts_apis")
            clients = (await conn.execute(text("SELECT client_id FROM ts_clients"))).scalars()
            assert list(clients) == ["old"]
            consents = (await conn.execute(text("SELECT client_id FROM ts_consents"))).scalars()
            assert list(consents) == ["old"]
            assert "ts_client_documents" not in await _tables(conn)
        await migrate.upgrade(engine)  # and up again, for the database fixture's cleanup
        async with engine.connect() as conn:
            assert "origin" in await _columns(conn, "ts_clients")
    finally:
        await engine.dispose()
