"""Login/consent interactions in SQL: the pending authorization request, bound to the
browser that started it."""

from __future__ import annotations

import json

from sqlalchemy import delete, insert, select, update

from tokensmith.core.models import AuthorizationRequest, Interaction
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlInteractionStore(SqlStore):
    async def create(self, interaction: Interaction) -> None:
        await self._conn.execute(
            insert(t.interactions).values(
                id=interaction.id,
                browser_digest=interaction.browser_digest,
                request=_request_to_json(interaction.request),
                created_at=interaction.created_at,
                expires_at=interaction.expires_at,
                pending_user_id=interaction.pending_user_id,
                pending_auth_time=interaction.pending_auth_time or None,
                pending_stamp=interaction.pending_stamp,
            )
        )

    async def get(self, interaction_id: str, now: int) -> Interaction | None:
        i = t.interactions
        row = await self._one(select(i).where(i.c.id == interaction_id, i.c.expires_at > now))
        if row is None:
            return None
        return Interaction(
            id=row["id"],
            browser_digest=row["browser_digest"],
            request=_request_from_json(row["request"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            pending_user_id=row["pending_user_id"],
            pending_auth_time=row["pending_auth_time"] or 0,
            pending_stamp=row["pending_stamp"],
        )

    async def delete(self, interaction_id: str) -> bool:
        result = await self._conn.execute(
            delete(t.interactions).where(t.interactions.c.id == interaction_id)
        )
        return bool(result.rowcount)

    async def set_pending(
        self, interaction_id: str, user_id: str, auth_time: int, stamp: int
    ) -> bool:
        i = t.interactions
        result = await self._conn.execute(
            update(i)
            .where(i.c.id == interaction_id)
            .values(pending_user_id=user_id, pending_auth_time=auth_time, pending_stamp=stamp)
        )
        return bool(result.rowcount)

    async def delete_for_user(self, user_id: str) -> int:
        i = t.interactions
        result = await self._conn.execute(delete(i).where(i.c.pending_user_id == user_id))
        return int(result.rowcount)


def _request_to_json(request: AuthorizationRequest) -> str:
    return json.dumps(
        {name: getattr(request, name) for name in AuthorizationRequest.__slots__},
        separators=(",", ":"),
    )


def _request_from_json(value: str) -> AuthorizationRequest:
    data = json.loads(value)
    data["scopes"] = tuple(data["scopes"])
    data["prompt"] = tuple(data["prompt"])
    data["acr_values"] = tuple(data.get("acr_values", ()))
    return AuthorizationRequest(**data)
