"""Consent per (user, client, API): one row per scope granted."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, insert, select

from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlConsentStore(SqlStore):
    async def granted_scopes(self, user_id: str, client_id: str, api: str) -> frozenset[str]:
        c = t.consents
        rows = await self._conn.execute(
            select(c.c.scope).where(
                c.c.user_id == user_id, c.c.client_id == client_id, c.c.api == api
            )
        )
        return frozenset(rows.scalars())

    async def grant(
        self, user_id: str, client_id: str, api: str, scopes: tuple[str, ...], now: int
    ) -> None:
        missing = set(scopes) - await self.granted_scopes(user_id, client_id, api)
        if missing:
            await self._conn.execute(
                insert(t.consents),
                [
                    {
                        "user_id": user_id,
                        "client_id": client_id,
                        "api": api,
                        "scope": s,
                        "granted_at": now,
                    }
                    for s in sorted(missing)
                ],
            )

    async def list_for_user(self, user_id: str) -> dict[str, dict[str, frozenset[str]]]:
        c = t.consents
        rows = await self._conn.execute(
            select(c.c.client_id, c.c.api, c.c.scope)
            .where(c.c.user_id == user_id)
            .order_by(c.c.client_id, c.c.api)
        )
        out: dict[str, dict[str, set[str]]] = {}
        for row in rows:
            out.setdefault(row.client_id, {}).setdefault(row.api, set()).add(row.scope)
        return {k: {a: frozenset(v) for a, v in apis.items()} for k, apis in out.items()}

    async def withdraw(self, user_id: str, client_id: str) -> int:
        c = t.consents
        result = await self._conn.execute(
            delete(c).where(c.c.user_id == user_id, c.c.client_id == client_id)
        )
        return int(result.rowcount)

    async def withdraw_for_api(self, api: str) -> int:
        c = t.consents
        result = await self._conn.execute(delete(c).where(c.c.api == api))
        return int(result.rowcount)

    async def withdraw_for_client_api(self, client_id: str, api: str) -> int:
        c = t.consents
        result = await self._conn.execute(
            delete(c).where(c.c.client_id == client_id, c.c.api == api)
        )
        return int(result.rowcount)

    async def withdraw_for_client_scopes(self, client_id: str, scopes: Collection[str]) -> int:
        c = t.consents
        result = await self._conn.execute(
            delete(c).where(c.c.client_id == client_id, c.c.scope.in_(sorted(scopes)))
        )
        return int(result.rowcount)
