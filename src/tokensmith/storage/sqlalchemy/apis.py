"""APIs (resource servers): the audiences tokens are issued for, with their scopes."""

from __future__ import annotations

import json

from sqlalchemy import RowMapping, delete, select

from tokensmith.core.models import Api
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words


class SqlApiStore(SqlStore):
    async def get(self, identifier: str) -> Api | None:
        row = await self._one(select(t.apis).where(t.apis.c.identifier == identifier))
        return _api(row) if row else None

    async def create(self, api: Api) -> None:
        await self._insert(
            t.apis,
            {
                "identifier": api.identifier,
                "name": api.name,
                "scopes": join_words(api.scopes),
                "scope_descriptions": json.dumps(api.descriptions),
                "created_at": api.created_at,
                "dynamic_clients": api.dynamic_clients,
            },
        )

    async def list(self) -> list[Api]:
        rows = (await self._conn.execute(select(t.apis).order_by(t.apis.c.identifier))).mappings()
        return [_api(r) for r in rows]

    async def delete(self, identifier: str) -> bool:
        result = await self._conn.execute(delete(t.apis).where(t.apis.c.identifier == identifier))
        return bool(result.rowcount)


def _api(row: RowMapping) -> Api:
    return Api(
        identifier=row["identifier"],
        name=row["name"],
        scopes=split_words(row["scopes"]),
        created_at=row["created_at"],
        descriptions=json.loads(row["scope_descriptions"]),
        dynamic_clients=bool(row["dynamic_clients"]),
    )
