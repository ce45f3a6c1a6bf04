"""SQLAlchemy (async) implementation of the client toolkit's stores.

Tables live on their own :data:`metadata` and are prefixed ``ts_client_`` so they sit next to an
application's tables without clashing. Works on SQLite (aiosqlite) and PostgreSQL (asyncpg). Apps
call :func:`create_all` once (or copy the tables into their own migrations).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.client.models import ExternalIdentity, SessionRecord

__all__ = ["SqlClientStore", "SqlLoginStore", "create_all", "metadata"]

metadata = MetaData()

users = Table(
    "ts_client_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("name", String(256), nullable=True),
)

identities = Table(
    "ts_client_identities",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column(
        "user_id", String(64), ForeignKey("ts_client_users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("issuer", String(512), nullable=False),
    Column("email", String(320), nullable=True),
    Column("email_verified", Boolean, nullable=False),
    Column("claims", JSON, nullable=False),
    Index("ix_ts_client_identities_user", "user_id"),
)

sessions = Table(
    "ts_client_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("provider", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("id_token", Text, nullable=True),
    Column("subject", String(255), nullable=True),
    Column("sid", String(255), nullable=True),
    Index("ix_ts_client_sessions_subject", "provider", "subject"),
)

upstream_tokens = Table(
    "ts_client_upstream_tokens",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("sealed", Text, nullable=False),
)

transactions = Table(
    "ts_client_transactions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)


async def create_all(engine: AsyncEngine) -> None:
    """Create the ``ts_client_*`` tables (only those) if they do not exist."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


class SqlLoginStore:
    """All client-toolkit stores on one :class:`~sqlalchemy.ext.asyncio.AsyncEngine`.

    The ``id_token`` kept for RP-initiated logout is stored sealed by the toolkit like the upstream
    tokens; this class never sees a secret in clear.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # identities -------------------------------------------------------------------------------
    async def find_user_by_identity(self, provider: str, subject: str) -> str | None:
        async with self._engine.connect() as conn:
            row = await conn.execute(
                select(identities.c.user_id).where(
                    identities.c.provider == provider, identities.c.subject == subject
                )
            )
            user_id = row.scalar_one_or_none()
        return None if user_id is None else str(user_id)

    async def create_user(self, *, email: str | None, name: str | None) -> str:
        user_id = str(uuid.uuid4())
        async with self._engine.begin() as conn:
            await conn.execute(insert(users).values(id=user_id, email=email, name=name))
        return user_id

    async def link_identity(self, user_id: str, identity: ExternalIdentity) -> None:
        values = {
            "user_id": user_id,
            "issuer": identity.issuer,
            "email": identity.email,
            "email_verified": identity.email_verified,
            "claims": _jsonable(identity.raw_claims),
        }
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(identities)
                .where(
                    identities.c.provider == identity.provider,
                    identities.c.subject == identity.subject,
                    identities.c.user_id == user_id,
                )
                .values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert(identities).values(
                        provider=identity.provider, subject=identity.subject, **values
                    )
                )

    # sessions ---------------------------------------------------------------------------------
    async def create_session(self, digest: str, record: SessionRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(
                    digest=digest,
                    user_id=record.user_id,
                    provider=record.provider,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                    id_token=record.id_token,
                    subject=record.subject,
                    sid=record.sid,
                )
            )

    async def get_session(self, digest: str) -> SessionRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.digest == digest))
            ).one_or_none()
        if row is None:
            return None
        return SessionRecord(
            user_id=row.user_id,
            provider=row.provider,
            created_at=row.created_at,
            expires_at=row.expires_at,
            id_token=row.id_token,
            subject=row.subject,
            sid=row.sid,
        )

    async def delete_session(self, digest: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.digest == digest))

    async def delete_user_sessions(self, user_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))

    async def delete_provider_sessions(
        self, provider: str, *, subject: str | None, sid: str | None
    ) -> int:
        conditions = [sessions.c.provider == provider]
        if subject is not None:
            conditions.append(sessions.c.subject == subject)
        if sid is not None:
            conditions.append(sessions.c.sid == sid)
        if subject is None and sid is None:
            return 0
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(sessions).where(*conditions))
        return int(result.rowcount or 0)

    # upstream tokens --------------------------------------------------------------------------
    async def save_upstream_tokens(self, user_id: str, provider: str, sealed: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(upstream_tokens)
                .where(upstream_tokens.c.user_id == user_id, upstream_tokens.c.provider == provider)
                .values(sealed=sealed)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert(upstream_tokens).values(
                        user_id=user_id, provider=provider, sealed=sealed
                    )
                )

    async def load_upstream_tokens(self, user_id: str, provider: str) -> str | None:
        async with self._engine.connect() as conn:
            row = await conn.execute(
                select(upstream_tokens.c.sealed).where(
                    upstream_tokens.c.user_id == user_id, upstream_tokens.c.provider == provider
                )
            )
            sealed = row.scalar_one_or_none()
        return None if sealed is None else str(sealed)

    async def delete_upstream_tokens(self, user_id: str, provider: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(upstream_tokens).where(
                    upstream_tokens.c.user_id == user_id, upstream_tokens.c.provider == provider
                )
            )

    async def delete_upstream_tokens_if(self, user_id: str, provider: str, *, sealed: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(upstream_tokens).where(
                    upstream_tokens.c.user_id == user_id,
                    upstream_tokens.c.provider == provider,
                    upstream_tokens.c.sealed == sealed,
                )
            )
        return bool(result.rowcount)

    # transactions -----------------------------------------------------------------------------
    async def consume_transaction(self, digest: str, *, expires_at: float, now: float) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(transactions).where(transactions.c.expires_at < now))
                await conn.execute(
                    insert(transactions).values(digest=digest, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True


def _jsonable(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Claims as plain JSON (drops anything json cannot encode)."""
    result: dict[str, Any] = json.loads(json.dumps(dict(claims), default=str))
    return result


# Deprecated name (documented until this release; removed in the next one).
SqlClientStore = SqlLoginStore
