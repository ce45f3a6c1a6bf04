"""What every SQL store shares: the request's connection, one-row reads, inserts that turn a
unique-key violation into ``Conflict`` (inside a savepoint, so the transaction goes on), and
inserts of rows keyed by their primary key that skip an existing row in the same statement
(``INSERT … ON CONFLICT (key) DO NOTHING``: no savepoint, one round-trip instead of three)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Table, false, insert, literal, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.ports import Conflict


def split_words(value: str | None) -> tuple[str, ...]:
    """A space-separated column (scopes, URIs, grant types) as a tuple."""
    return tuple(value.split(" ")) if value else ()


def join_words(values: tuple[str, ...]) -> str:
    return " ".join(values)


def may_hold_any(column: ColumnElement[Any], words: Collection[str]) -> ColumnElement[bool]:
    """Rows whose space-separated ``column`` may hold one of ``words``: a ``LIKE`` per word
    (wildcards in the word escaped). SQLite's ``LIKE`` ignores the case of ASCII letters, so
    the rows found are checked again exactly (``split_words``)."""
    padded = literal(" ") + column + literal(" ")
    conditions = [padded.contains(f" {w} ", autoescape=True) for w in sorted(words)]
    return or_(*conditions) if conditions else false()


def chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``values`` in runs of at most ``size``: an ``IN`` list under every driver's limit of
    bound parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


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

    async def _insert_new(self, table: Table, values: dict[str, Any]) -> bool:
        """Insert a row unless one with its primary key exists (then nothing happens and the
        transaction goes on); True if it was inserted. Other integrity errors (a foreign key)
        are raised as they are."""
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        keys = [column.name for column in table.primary_key.columns]
        stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
        result = await self._conn.execute(stmt)
        return bool(result.rowcount)
