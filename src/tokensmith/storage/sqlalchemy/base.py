"""What every SQL store shares: the request's connection, one-row reads, and inserts that turn a
unique-key violation into ``Conflict`` (inside a savepoint, so the transaction goes on)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.ports import Conflict


def split_words(value: str | None) -> tuple[str, ...]:
    """A space-separated column (scopes, URIs, grant types) as a tuple."""
    return tuple(value.split(" ")) if value else ()


def join_words(values: tuple[str, ...]) -> str:
    return " ".join(values)


class SqlStore:
    """A store on the connection (and transaction) of one request."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, stmt: Any) -> RowMapping | None:
        row = (await self._conn.execute(stmt)).mappings().first()
        return row

    async def _insert(self, table: Table, values: dict[str, Any]) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(table).values(**values))
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from None
