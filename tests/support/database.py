"""The PostgreSQL administration the per-test databases are made with (``tests/conftest.py``),
shared with the suites that create databases of their own (``tests/storage/``,
``tests/production/``, ``tests/server/test_slow_clients.py``)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.services import postgres_url


def pg_admin_url() -> str:
    """The PostgreSQL administrative database (``TOKENSMITH_TEST_DATABASE_URL``)."""
    return postgres_url()


async def pg_execute(admin_url: str, *statements: str) -> None:
    """Run ``statements`` outside a transaction (``CREATE DATABASE`` / ``DROP DATABASE``)."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def fresh_database_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database on ``backend`` (``sqlite``: a copy of the migrated template
    file; otherwise a PostgreSQL ``CREATE DATABASE ... TEMPLATE``, dropped afterwards)."""
    if backend == "sqlite":
        path = tmp_path / "tokensmith.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    databases: TemplateCopies = request.getfixturevalue("pg_databases")
    name = databases.take()
    try:
        yield str(make_url(pg_admin_url()).set(database=name))
    finally:
        databases.drop(name)


class TemplateCopies:
    """Fresh PostgreSQL copies of the migrated template (``CREATE DATABASE ... TEMPLATE``),
    made and dropped on a thread of its own, so that tests do not wait for either: the next
    test's copy is made while a test runs (``ahead``), and ``DROP DATABASE``, which waits for
    a checkpoint (a second or more on a busy machine), runs after the test is over. Each copy
    serves one test only; ``close`` drops every copy and waits for it."""

    DROPS_AT_ONCE = 4

    def __init__(self, admin_url: str, template: str, ahead: int = 1) -> None:
        self.admin_url = admin_url
        self.template = template
        self.ahead = ahead
        self._ready: list[str] = []
        self._taken: set[str] = set()
        self._to_drop: list[str] = []
        self._waiting = 0
        self._creating = 0
        self._closing = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """A fresh copy of the template, for one test."""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
            try:
                while not self._ready and self._error is None:
                    self._changed.wait()
            finally:
                self._waiting -= 1
            if self._error is not None:
                raise RuntimeError("could not make a test database") from self._error
            name = self._ready.pop(0)
            self._taken.add(name)
            return name

    def drop(self, name: str) -> None:
        """Drop a copy taken by ``take`` once its test is over (not waited for)."""
        with self._changed:
            self._taken.discard(name)
            self._to_drop.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        """Drop every copy, the ready ones and any taken but not given back included, and wait
        until they are gone."""
        with self._changed:
            self._closing = True
            self._to_drop += [*self._ready, *sorted(self._taken)]
            self._ready.clear()
            self._taken.clear()
            self._changed.notify_all()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError("could not make or drop a test database") from self._error

    def _next(self) -> tuple[str, str] | None:
        with self._changed:
            while True:
                if self._error is not None:
                    return None
                wanted = 0 if self._closing else self.ahead + self._waiting
                if len(self._ready) + self._creating < wanted:
                    self._creating += 1
                    return "create", f"ts_test_{uuid.uuid4().hex[:12]}"
                if self._to_drop:
                    return "drop", self._to_drop.pop(0)
                if self._closing:
                    return None
                self._changed.wait()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported by take() and close()
            with self._changed:
                self._error = error
                self._changed.notify_all()

    async def _serve(self) -> None:
        # several drops at once share the checkpoints they wait for: one at a time, they fall
        # behind tests that take less than a checkpoint
        engine = create_async_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", pool_size=self.DROPS_AT_ONCE + 1
        )
        drops_at_once = asyncio.Semaphore(self.DROPS_AT_ONCE)
        dropping: set[asyncio.Task[None]] = set()
        try:
            while (job := await asyncio.to_thread(self._next)) is not None:
                kind, name = job
                if kind == "create":
                    await self._execute(
                        engine, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'
                    )
                    with self._changed:
                        self._creating -= 1
                        self._ready.append(name)
                        self._changed.notify_all()
                else:
                    await drops_at_once.acquire()
                    task = asyncio.create_task(self._drop(engine, name, drops_at_once))
                    dropping.add(task)
                    task.add_done_callback(dropping.discard)
            await asyncio.gather(*dropping)
        finally:
            await engine.dispose()

    async def _drop(self, engine: AsyncEngine, name: str, done: asyncio.Semaphore) -> None:
        try:
            await self._execute(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except BaseException as error:  # reported by take() and close()
            with self._changed:
                self._error = error
                self._changed.notify_all()
        finally:
            done.release()

    @staticmethod
    async def _execute(engine: AsyncEngine, statement: str) -> None:
        async with engine.connect() as conn:
            await conn.execute(text(statement))


async def forget_keys(database_url: str) -> None:
    """Delete the signing keys of a test's database (made from a template that has them,
    ``tests/conftest.py``): the database as no server has started on it yet."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM ts_signing_keys"))
    finally:
        await engine.dispose()
