"""SSO sessions of the authorization server, keyed by the digest of the session cookie."""

from __future__ import annotations

from sqlalchemy import RowMapping, delete, insert, select

from tokensmith.core.models import Session
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words


class SqlSessionStore(SqlStore):
    async def create(self, session: Session) -> None:
        await self._conn.execute(
            insert(t.sessions).values(
                digest=session.digest,
                user_id=session.user_id,
                auth_time=session.auth_time,
                amr=join_words(session.amr),
                created_at=session.auth_time,
                expires_at=session.expires_at,
                mfa_at=session.mfa_at,
            )
        )

    async def get(self, digest: str, now: int) -> Session | None:
        s = t.sessions
        row = await self._one(select(s).where(s.c.digest == digest, s.c.expires_at > now))
        return _session(row) if row is not None else None

    async def list_for_user(self, user_id: str, now: int) -> list[Session]:
        s = t.sessions
        rows = await self._conn.execute(
            select(s)
            .where(s.c.user_id == user_id, s.c.expires_at > now)
            .order_by(s.c.auth_time, s.c.digest)
        )
        return [_session(r) for r in rows.mappings()]

    async def delete(self, digest: str) -> None:
        await self._conn.execute(delete(t.sessions).where(t.sessions.c.digest == digest))

    async def delete_for_user(self, user_id: str) -> int:
        result = await self._conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user_id))
        return int(result.rowcount)


def _session(row: RowMapping) -> Session:
    return Session(
        digest=row["digest"],
        user_id=row["user_id"],
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
        amr=split_words(row["amr"]),
        mfa_at=row["mfa_at"],
    )
