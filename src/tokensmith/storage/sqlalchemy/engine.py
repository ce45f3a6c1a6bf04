"""Engine creation for SQLite (the embedded default) and PostgreSQL.

SQLite: WAL journal, a busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` for every
transaction, so that concurrent writers queue on the database lock instead of failing when a read
transaction tries to become a write one.

PostgreSQL: no pre-ping on checkout (it cost a round-trip per request). A connection that died
while pooled (a database restart) is found by the first statement of a transaction instead, which
:class:`RetryingConnection` then runs once more on a new connection: nothing had been done in
that transaction yet, so the retry is safe, and the request does not see the restart.

The SQLite file holds password hashes, token digests and (without a key-encryption key) private
signing keys: it is created readable by its owner only (0600, and 0700 for a folder made for it),
before SQLite opens it; SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode of the
database file. An existing file open to group or others is narrowed to 0600 at start, with a log
line (``tokensmith doctor`` reports it too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from typing import Any

from sqlalchemy import CursorResult, Executable, event
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

log = logging.getLogger("tokensmith.storage")

FILE_MODE = 0o600
FOLDER_MODE = 0o700
#: The files SQLite keeps next to the database (WAL, shared-memory index, rollback journal).
SIDE_FILES = ("-wal", "-shm", "-journal")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> str | None:
    """The path of the SQLite database file of ``url``; None for another database or memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if "mode=memory" in str(parsed.query):
        return None
    return database


def sqlite_files(path: str) -> list[str]:
    """The database file and whichever of its side files exist."""
    return [path] + [path + suffix for suffix in SIDE_FILES if os.path.exists(path + suffix)]


def secure_sqlite_file(path: str) -> None:
    """Create the database file (and the folders missing above it) private to this user, or
    narrow an existing file and its side files to 0600, before SQLite opens them."""
    folder = os.path.dirname(os.path.abspath(path))
    missing: list[str] = []
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(created, FOLDER_MODE)
    with contextlib.suppress(FileExistsError):
        # SQLite takes an empty file as an empty database.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for name in sqlite_files(path):  # an existing file, or side files left by an earlier one
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if not mode & 0o077:
                continue
            os.chmod(name, mode & FILE_MODE)
        except FileNotFoundError:  # a dangling link, or a side file SQLite just removed
            continue
        except OSError as exc:  # not the owner: say so, and leave it to the operator
            log.warning("%s is open to other users and cannot be narrowed to 0600: %s", name, exc)
        else:
            log.warning("narrowed the mode of %s from %04o to %04o", name, mode, mode & FILE_MODE)


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, secure_file: bool = True
) -> AsyncEngine:
    """``secure_file``: create a SQLite file private to this user and narrow an existing one
    (see the module docstring); False only for readers that must not change anything
    (``tokensmith doctor``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        path = sqlite_file(url)
        if path is not None and secure_file:
            secure_sqlite_file(path)
        # One connection per process: every transaction is BEGIN IMMEDIATE (a writer), so SQLite
        # runs one at a time anyway; a second connection would only wait inside SQLite's busy
        # handler (sleeping and polling in its own thread) instead of on the pool's asyncio
        # queue, which hands the connection over at once.
        pool: dict[str, Any] = {}
        if database and database != ":memory:" and "mode=memory" not in str(parsed.query):
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)


def create_reader(url: str, *, pool_size: int = 2) -> AsyncEngine | None:
    """A second engine for short reads outside any request's transaction (the client and API
    caches' reloads), on a SQLite file only: read-only connections (``query_only``) in
    autocommit, each ``SELECT`` its own read of the last committed state. In WAL mode a reader
    never waits for the writer, so a reload does not queue behind the transactions on the one
    write connection (under load that queue was seconds long, and a token request whose
    cached client had expired waited in it). ``None`` for PostgreSQL, whose pool serves reads
    and writes alike, and for an in-memory SQLite database, which a second engine would not
    see."""
    if sqlite_file(url) is None:
        return None
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: no BEGIN, no lock held
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


class RetryingConnection(AsyncConnection):
    """A connection whose first statement is sent again, once, on a new connection when the
    pooled one turns out to be dead (``connection_invalidated``: the server restarted or dropped
    it). Only the first: later statements belong to a transaction that a retry would split.
    SQLAlchemy then discards every pooled connection older than the failure, so the requests
    that follow do not meet dead connections either. Use as ``async with
    RetryingConnection(engine) as conn``."""

    __slots__ = ("_fresh",)

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._fresh = True

    async def execute(
        self,
        statement: Executable,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> CursorResult[Any]:
        if not self._fresh:
            return await super().execute(statement, parameters, execution_options=execution_options)
        self._fresh = False
        try:
            return await super().execute(statement, parameters, execution_options=execution_options)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("a pooled database connection was dead (%s); retrying on a new one", exc)
            began = self.in_transaction()
            await self.rollback()
            if began:
                await self.begin()
            return await super().execute(statement, parameters, execution_options=execution_options)

    async def driver_in_transaction(self) -> bool:
        """Whether the driver (asyncpg) connection has a transaction open: SQLAlchemy's asyncpg
        adapter sends ``BEGIN`` with the first statement it runs, not at ``begin()``, so until
        then a statement sent to the driver (:meth:`driver_fetch`) is a transaction by itself
        (autocommit)."""
        raw = await self._raw()
        return bool(raw.driver_connection.is_in_transaction())  # type: ignore[union-attr]

    async def _raw(self) -> PoolProxiedConnection:
        """The pooled connection: read from the open connection (``get_raw_connection`` runs
        in a greenlet of its own, which only a connection to be made again needs)."""
        sync = self.sync_connection
        if sync is not None and not sync.invalidated and not sync.closed:
            return sync.connection
        return await self.get_raw_connection()

    async def driver_fetch(self, sql: str, *args: object, begin: bool = False) -> list[Any]:
        """The rows of ``sql`` (``$n`` parameters) run by the driver (asyncpg, PostgreSQL only),
        past SQLAlchemy's per-statement work (compiling the parameters, the execution context,
        the result's rows): a prepared statement of asyncpg's cache, the rows as asyncpg
        ``Record``s (read by column name). Outside a transaction SQLAlchemy started (see
        :meth:`driver_in_transaction`) the statement commits by itself, unless ``begin``:
        then SQLAlchemy's transaction is started first (its ``BEGIN``), which SQLAlchemy
        commits or rolls back as if it had sent the statement.

        The same guarantee as :meth:`execute`: a dead pooled connection found by the first
        statement of the connection's transaction is discarded (with every pooled connection
        older than the failure) and the statement sent once more on a new one; a later
        statement is never sent again."""
        fresh, self._fresh = self._fresh, False
        raw = await self._raw()
        driver: Any = raw.driver_connection
        try:
            if begin and not driver.is_in_transaction():
                await raw.dbapi_connection._start_transaction()  # type: ignore[union-attr]
            return list(await driver.fetch(sql, *args))
        except Exception as exc:
            if not driver.is_closed():
                raise self._translated(exc, sql, args) from exc
            # as SQLAlchemy does for a disconnect found by a statement: the connection is
            # discarded, and the pool discards those made before it as they are checked out
            self.sync_engine.pool._invalidate(raw, exc)
            began = self.in_transaction()
            await self.invalidate(exc)
            if not fresh:
                raise self._translated(exc, sql, args, invalidated=True) from exc
            log.warning("a pooled database connection was dead (%s); retrying on a new one", exc)
            await self.rollback()
            if began:
                await self.begin()
        raw = await self._raw()
        driver = raw.driver_connection
        try:
            if begin and not driver.is_in_transaction():
                await raw.dbapi_connection._start_transaction()  # type: ignore[union-attr]
            return list(await driver.fetch(sql, *args))
        except Exception as exc:
            raise self._translated(exc, sql, args, invalidated=driver.is_closed()) from exc

    def _translated(
        self, exc: Exception, sql: str, args: tuple[object, ...], *, invalidated: bool = False
    ) -> Exception:
        """``exc``, raised by asyncpg, as SQLAlchemy raises it from a statement: a
        ``DBAPIError`` (``IntegrityError``, ``OperationalError``, ...; the server answers a
        database it cannot reach with a 503), else ``exc`` itself."""
        dbapi: Any = self.dialect.loaded_dbapi
        try:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, exc)
        except Exception as translated:
            if not isinstance(translated, dbapi.Error):
                return exc  # not an error of the database: raised as it is
            wrapped: Exception = DBAPIError.instance(
                sql,
                args,
                translated,
                dbapi.Error,
                connection_invalidated=invalidated,
                dialect=self.dialect,
            )
            return wrapped
        return exc
