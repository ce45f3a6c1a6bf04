"""Where the stores of a request are put together: the one place that decides, per concern,
whether it lives in SQL or in Redis.

Without Redis every concern is in SQL. With Redis (``TOKENSMITH_REDIS_URL``), the short-lived
ones — authorization codes, login/consent interactions, client-assertion ``jti``s, the JWT
deny-list, the login attempt counters and fetched client metadata documents — live there
(``storage/redis.py``), shared by every process; everything else stays in SQL, in the request's
transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.storage.redis import (
    RedisAssertionJtiStore,
    RedisClientDocumentStore,
    RedisCodeStore,
    RedisDenyList,
    RedisInteractionStore,
    RedisLoginFailureStore,
)
from tokensmith.storage.sqlalchemy.account_tokens import SqlAccountTokenStore
from tokensmith.storage.sqlalchemy.apis import SqlApiStore
from tokensmith.storage.sqlalchemy.assertion_jtis import SqlAssertionJtiStore
from tokensmith.storage.sqlalchemy.audit import SqlAuditTrailStore
from tokensmith.storage.sqlalchemy.client_documents import SqlClientDocumentStore
from tokensmith.storage.sqlalchemy.clients import SqlClientStore
from tokensmith.storage.sqlalchemy.codes import SqlCodeStore
from tokensmith.storage.sqlalchemy.consents import SqlConsentStore
from tokensmith.storage.sqlalchemy.engine import RetryingConnection
from tokensmith.storage.sqlalchemy.grants import SqlGrantStore
from tokensmith.storage.sqlalchemy.initial_access_tokens import SqlInitialAccessTokenStore
from tokensmith.storage.sqlalchemy.interactions import SqlInteractionStore
from tokensmith.storage.sqlalchemy.mfa import SqlRecoveryCodeStore, SqlTotpStore
from tokensmith.storage.sqlalchemy.passkeys import SqlPasskeyStore
from tokensmith.storage.sqlalchemy.security_stamps import HeldStamps, SqlSecurityStampStore
from tokensmith.storage.sqlalchemy.sessions import SqlSessionStore
from tokensmith.storage.sqlalchemy.throttles import SqlLoginFailureStore
from tokensmith.storage.sqlalchemy.tokens import SqlAccessTokenStore, SqlRefreshTokenStore
from tokensmith.storage.sqlalchemy.users import SqlUserStore


class Ephemeral:
    """The Redis-backed stores for short-lived state, shared by every request."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.codes = RedisCodeStore(redis, prefix)
        self.interactions = RedisInteractionStore(redis, prefix)
        self.assertion_jtis = RedisAssertionJtiStore(redis, prefix)
        self.denylist = RedisDenyList(redis, prefix)
        self.login_failures = RedisLoginFailureStore(redis, prefix)
        self.client_documents = RedisClientDocumentStore(redis, prefix)


class RequestStores:
    """All stores of one request (``core.ports.Stores``): the SQL ones on one connection, inside
    one transaction, and the Redis ones when configured. Built by ``build_stores``."""

    holds_connection = True
    """Built on the connection of the request's open transaction."""

    __slots__ = (
        "_conn",
        "_held",
        "access_tokens",
        "account_tokens",
        "apis",
        "assertion_jtis",
        "audit_trail",
        "client_documents",
        "clients",
        "codes",
        "consents",
        "grants",
        "initial_access_tokens",
        "interactions",
        "login_failures",
        "passkeys",
        "recovery_codes",
        "refresh_tokens",
        "security_stamps",
        "sessions",
        "totp",
        "users",
    )

    def __init__(
        self,
        conn: AsyncConnection,
        *,
        held: HeldStamps,
        codes: SqlCodeStore | RedisCodeStore,
        interactions: SqlInteractionStore | RedisInteractionStore,
        assertion_jtis: SqlAssertionJtiStore | RedisAssertionJtiStore,
        access_tokens: SqlAccessTokenStore,
        login_failures: SqlLoginFailureStore | RedisLoginFailureStore,
        client_documents: SqlClientDocumentStore | RedisClientDocumentStore,
    ) -> None:
        self._conn = conn
        self._held = held
        self.apis = SqlApiStore(conn)
        self.clients = SqlClientStore(conn)
        self.users = SqlUserStore(conn)
        self.security_stamps = SqlSecurityStampStore(conn, held)
        self.grants = SqlGrantStore(conn, self.security_stamps)
        self.refresh_tokens = SqlRefreshTokenStore(conn)
        self.consents = SqlConsentStore(conn)
        self.sessions = SqlSessionStore(conn)
        self.account_tokens = SqlAccountTokenStore(conn)
        self.totp = SqlTotpStore(conn)
        self.recovery_codes = SqlRecoveryCodeStore(conn)
        self.initial_access_tokens = SqlInitialAccessTokenStore(conn)
        self.passkeys = SqlPasskeyStore(conn)
        self.audit_trail = SqlAuditTrailStore(conn)
        self.codes = codes
        self.interactions = interactions
        self.assertion_jtis = assertion_jtis
        self.access_tokens = access_tokens
        self.login_failures = login_failures
        self.client_documents = client_documents

    async def commit(self) -> None:
        self._held.clear()  # the transaction's locks end with it
        await self._conn.commit()
        await self._conn.begin()


def build_stores(conn: AsyncConnection, ephemeral: Ephemeral | None) -> RequestStores:
    """The stores of one request on ``conn``: the SQL-or-Redis choice for every concern."""
    held = HeldStamps()  # the stamps this transaction holds, shared by the stores below
    if ephemeral is None:
        return RequestStores(
            conn,
            held=held,
            codes=SqlCodeStore(conn, held),
            interactions=SqlInteractionStore(conn),
            assertion_jtis=SqlAssertionJtiStore(conn),
            access_tokens=SqlAccessTokenStore(conn),
            login_failures=SqlLoginFailureStore(conn),
            client_documents=SqlClientDocumentStore(conn),
        )
    return RequestStores(
        conn,
        held=held,
        codes=ephemeral.codes,
        interactions=ephemeral.interactions,
        assertion_jtis=ephemeral.assertion_jtis,
        access_tokens=SqlAccessTokenStore(conn, ephemeral.denylist),
        login_failures=ephemeral.login_failures,
        client_documents=ephemeral.client_documents,
    )


class Database:
    """The engine and the unit of work: ``async with db.transaction() as stores``.

    With ``ephemeral`` (Redis), codes, interactions, assertion jtis, the JWT deny-list and the
    login attempt counters live there; everything else in SQL. ``reader``: the engine of
    :meth:`read` (``engine.create_reader``: a SQLite file's read-only connections), else
    :meth:`read` uses ``engine``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ephemeral: Ephemeral | None = None,
        *,
        reader: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.ephemeral = ephemeral
        self.reader = reader

    @asynccontextmanager
    async def read(self) -> AsyncIterator[RequestStores]:
        """Stores for a short read outside any request's transaction (the caches' reloads):
        on the reader's connection, where every ``SELECT`` reads the last committed state and
        a write fails; without a reader, a transaction of its own on ``engine``, rolled back
        (nothing to keep)."""
        if self.reader is not None:
            async with self.reader.connect() as conn:
                yield build_stores(conn, self.ephemeral)
            return
        async with RetryingConnection(self.engine) as conn:
            await conn.begin()
            try:
                yield build_stores(conn, self.ephemeral)
            finally:
                await conn.rollback()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RequestStores]:
        async with RetryingConnection(self.engine) as conn:
            await conn.begin()
            try:
                yield build_stores(conn, self.ephemeral)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not None:
            await self.reader.dispose()
