"""The links of ``core.self_service`` in SQL. Using one is a single ``UPDATE ... WHERE used_at IS
NULL AND expires_at > now RETURNING``, so of two concurrent uses exactly one wins; used rows stay
until pruned after they expire."""

from __future__ import annotations

import orjson
from sqlalchemy import ColumnElement, RowMapping, delete, insert, select, update

from tokensmith.core.models import AccountToken
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore


class SqlAccountTokenStore(SqlStore):
    async def create(self, token: AccountToken) -> None:
        await self._conn.execute(
            insert(t.account_tokens).values(
                digest=token.digest,
                purpose=token.purpose,
                email=token.email,
                user_id=token.user_id,
                data=orjson.dumps(token.data).decode(),
                created_at=token.created_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
            )
        )

    async def consume(self, digest: str, purpose: str, now: int) -> AccountToken | None:
        tokens = t.account_tokens
        row = await self._one(
            update(tokens)
            .where(
                tokens.c.digest == digest,
                tokens.c.purpose == purpose,
                tokens.c.used_at.is_(None),
                tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(*tokens.c)
        )
        return _token(row) if row else None

    async def get(self, digest: str, purpose: str, now: int) -> AccountToken | None:
        tokens = t.account_tokens
        row = await self._one(
            select(tokens).where(
                tokens.c.digest == digest,
                tokens.c.purpose == purpose,
                tokens.c.used_at.is_(None),
                tokens.c.expires_at > now,
            )
        )
        return _token(row) if row else None

    async def revoke_for_user(self, user_id: str, purpose: str, now: int) -> int:
        return await self._revoke(t.account_tokens.c.user_id == user_id, purpose, now)

    async def revoke_for_email(self, email: str, purpose: str, now: int) -> int:
        return await self._revoke(t.account_tokens.c.email == email, purpose, now)

    async def _revoke(self, whose: ColumnElement[bool], purpose: str, now: int) -> int:
        """Mark the unused links of ``purpose`` that ``whose`` selects used."""
        tokens = t.account_tokens
        result = await self._conn.execute(
            update(tokens)
            .where(whose, tokens.c.purpose == purpose, tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return int(result.rowcount)

    async def list_pending(self, purpose: str, now: int) -> list[AccountToken]:
        tokens = t.account_tokens
        result = await self._conn.execute(
            select(tokens)
            .where(
                tokens.c.purpose == purpose,
                tokens.c.used_at.is_(None),
                tokens.c.expires_at > now,
            )
            .order_by(tokens.c.created_at, tokens.c.email)
        )
        return [_token(row) for row in result.mappings()]

    async def delete_for_user(self, user_id: str) -> int:
        tokens = t.account_tokens
        result = await self._conn.execute(delete(tokens).where(tokens.c.user_id == user_id))
        return int(result.rowcount)


def _token(row: RowMapping) -> AccountToken:
    data = orjson.loads(row["data"]) if row["data"] else {}
    return AccountToken(
        digest=row["digest"],
        purpose=row["purpose"],
        email=row["email"],
        user_id=row["user_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        data={str(k): str(v) for k, v in data.items()},
        used_at=row["used_at"],
    )
