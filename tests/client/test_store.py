"""One contract suite for the client stores, run on SQLite and on PostgreSQL.

PostgreSQL gets a uniquely named database for this module (created on the admin URL from
``tests/services.py::postgres_url()`` with AUTOCOMMIT, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.client.conftest import APP, build_app, github_provider, login
from tests.client.fake_github import FakeGitHub
from tests.services import postgres_url
from tokensmith.client import ClientAuth, ClientConfig, ExternalIdentity, SqlLoginStore, create_all
from tokensmith.client.models import SessionRecord
from tokensmith.client.sqlalchemy_store import metadata


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _admin_sync(url: str, sql: str) -> None:
    """Run on a private loop in a worker thread (the test's loop may be running)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin(url, sql)).result()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    admin = postgres_url()
    name = f"ts_client_{uuid.uuid4().hex}"
    _admin_sync(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_sync(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[SqlLoginStore]:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    engine = create_async_engine(url)
    await create_all(engine)
    await create_all(engine)  # idempotent
    try:
        yield SqlLoginStore(engine)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()


def identity(subject: str = "42", provider: str = "github", **kw: Any) -> ExternalIdentity:
    values: dict[str, Any] = {
        "provider": provider,
        "issuer": "https://github.com",
        "subject": subject,
        "email": "a@example.com",
        "email_verified": True,
        "name": "A",
        "raw_claims": {"user": {"id": 42, "login": "a"}},
    }
    values.update(kw)
    return ExternalIdentity(**values)


def test_tables_are_prefixed_on_their_own_metadata() -> None:
    assert metadata.tables
    assert all(name.startswith("ts_client_") for name in metadata.tables)


async def test_identities(store: SqlLoginStore) -> None:
    assert await store.find_user_by_identity("github", "42") is None
    user = await store.create_user(email="a@example.com", name="A")
    await store.link_identity(user, identity())
    assert await store.find_user_by_identity("github", "42") == user
    await store.link_identity(user, identity(name="A2", raw_claims={"v": 2}))  # update, no dupe
    assert await store.find_user_by_identity("github", "42") == user
    assert await store.find_user_by_identity("google", "42") is None
    other = await store.create_user(email=None, name=None)
    assert other != user
    await store.link_identity(other, identity(provider="google"))
    assert await store.find_user_by_identity("google", "42") == other


async def test_sessions(store: SqlLoginStore) -> None:
    record = SessionRecord(
        user_id="u1", provider="github", created_at=10.0, expires_at=20.0, id_token="sealed"
    )
    await store.create_session("d1", record)
    await store.create_session("d2", record)
    await store.create_session(
        "d3", SessionRecord(user_id="u2", provider="op", created_at=1.0, expires_at=2.0)
    )
    assert await store.get_session("d1") == record
    assert await store.get_session("nope") is None
    await store.delete_session("d1")
    assert await store.get_session("d1") is None
    await store.delete_user_sessions("u1")
    assert await store.get_session("d2") is None
    assert await store.get_session("d3") is not None


async def test_upstream_tokens(store: SqlLoginStore) -> None:
    assert await store.load_upstream_tokens("u1", "github") is None
    await store.save_upstream_tokens("u1", "github", "sealed-1")
    await store.save_upstream_tokens("u1", "github", "sealed-2")
    await store.save_upstream_tokens("u1", "op", "sealed-3")
    assert await store.load_upstream_tokens("u1", "github") == "sealed-2"
    await store.delete_upstream_tokens("u1", "github")
    assert await store.load_upstream_tokens("u1", "github") is None
    assert await store.load_upstream_tokens("u1", "op") == "sealed-3"


async def test_transactions_are_consumed_once(store: SqlLoginStore) -> None:
    assert await store.consume_transaction("t1", expires_at=100.0, now=0.0) is True
    assert await store.consume_transaction("t1", expires_at=100.0, now=1.0) is False
    assert await store.consume_transaction("t2", expires_at=300.0, now=200.0) is True
    # t1 expired and was purged; the toolkit refuses an expired transaction before this point
    assert await store.consume_transaction("t1", expires_at=400.0, now=200.0) is True


async def test_concurrent_consumption_has_one_winner(store: SqlLoginStore) -> None:
    results = await asyncio.gather(
        *(store.consume_transaction("race", expires_at=100.0, now=0.0) for _ in range(5)),
        return_exceptions=True,
    )
    assert results.count(True) == 1
    assert all(r is True or r is False for r in results)


async def test_github_login_end_to_end_on_this_database(
    store: SqlLoginStore, fake_github: FakeGitHub
) -> None:
    http = httpx.AsyncClient(timeout=5.0)
    config = ClientConfig(
        secret_key=secrets.token_bytes(32),
        base_url=APP,
        providers={"github": github_provider(fake_github)},
    )
    auth = ClientAuth(config, store=store, http=http)
    browser = httpx.AsyncClient(
        mounts={APP: httpx.ASGITransport(app=build_app(auth))}, follow_redirects=False
    )
    try:
        flow = await login(browser, "github")
        assert flow.callback is not None
        assert flow.callback.status_code == 303
        assert (await browser.get(f"{APP}/me")).status_code == 200
        replay = await browser.get(flow.callback_url)
        assert replay.status_code == 400
    finally:
        await browser.aclose()
        await http.aclose()
