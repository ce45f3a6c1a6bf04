"""Two worker processes refreshing the same user's tokens at once must not log the user out.

Each "worker" is an independent toolkit (its own ClientAuth, httpx client, engine and in-process
refresh lock) on one database, SQLite and PostgreSQL, against the GitHub stand-in, whose refresh
tokens are single-use and rotate. Worker 1's refresh request is held at the provider until worker
2 has refreshed and stored fresh tokens; worker 1 then gets ``bad_refresh_token`` (its refresh
token was just rotated away) and must use worker 2's tokens, not delete them.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.client.conftest import APP, build_app, github_provider, login
from tests.client.fake_github import FakeGitHub
from tokensmith.client import ClientAuth, ClientConfig, ReloginRequired, SqlLoginStore, create_all

Worker = ClientAuth
MakeWorker = Callable[[], Awaitable[Worker]]


@pytest.fixture
async def workers(
    database_url: str, fake_github: FakeGitHub
) -> AsyncIterator[tuple[MakeWorker, list[AsyncEngine]]]:
    """A factory of independent workers sharing one database and one secret key."""
    fake_github.expiring_tokens = True
    secret_key = secrets.token_bytes(32)
    engines: list[AsyncEngine] = []
    async with AsyncExitStack() as stack:

        async def make() -> Worker:
            engine = create_async_engine(database_url)
            stack.push_async_callback(engine.dispose)
            await create_all(engine)
            engines.append(engine)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
            config = ClientConfig(
                secret_key=secret_key,
                base_url=APP,
                providers={"github": github_provider(fake_github)},
            )
            return ClientAuth(config, store=SqlLoginStore(engine), http=http)

        yield make, engines


async def signed_in_user(worker: Worker) -> str:
    app = build_app(worker)
    async with httpx.AsyncClient(
        mounts={APP: httpx.ASGITransport(app=app)}, follow_redirects=False
    ) as browser:
        flow = await login(browser, "github")
        assert flow.callback is not None
        assert flow.callback.status_code == 303
        return str((await browser.get(f"{APP}/me")).json()["user_id"])


async def test_a_refresh_lost_to_another_worker_uses_its_tokens(
    workers: tuple[MakeWorker, list[AsyncEngine]], fake_github: FakeGitHub
) -> None:
    make, _ = workers
    worker1, worker2 = await make(), await make()
    user_id = await signed_in_user(worker1)
    fake_github.revoke_access_tokens()  # both workers now get a 401 and refresh

    fake_github.hold_next_refresh = release = asyncio.Event()
    slow = asyncio.create_task(worker1.api(user_id, "github").get("/user"))
    await asyncio.wait_for(fake_github.refresh_held.wait(), 10)  # worker 1 is at the provider
    fast = await worker2.api(user_id, "github").get("/user")  # rotates the refresh token
    assert fast.status_code == 200
    release.set()

    response = await asyncio.wait_for(slow, 10)  # refused as a replay, then uses worker 2's
    assert response.status_code == 200
    assert response.json()["login"] == "alice"
    assert fake_github.refresh_requests == 2
    assert len(fake_github.refresh) == 1  # the provider holds a valid refresh token...
    stored = await worker1.vault.load(user_id, "github")
    assert stored is not None  # ...and so do we: it is the one stored
    assert stored.refresh_token in fake_github.refresh
    for worker in (worker1, worker2):  # and both workers keep working without a new login
        assert (await worker.api(user_id, "github").get("/user")).status_code == 200
    assert fake_github.refresh_requests == 2


async def test_a_dead_refresh_token_is_deleted_when_nobody_replaced_it(
    workers: tuple[MakeWorker, list[AsyncEngine]], fake_github: FakeGitHub
) -> None:
    make, _ = workers
    worker1, worker2 = await make(), await make()
    user_id = await signed_in_user(worker1)
    fake_github.revoke_access_tokens()
    fake_github.revoke_refresh_tokens()
    with pytest.raises(ReloginRequired):
        await worker2.api(user_id, "github").get("/user")
    assert await worker1.vault.load(user_id, "github") is None


async def test_compare_and_delete_leaves_newer_tokens(
    workers: tuple[MakeWorker, list[AsyncEngine]],
) -> None:
    make, _ = workers
    worker = await make()
    store = worker.vault.store
    await store.save_upstream_tokens("u1", "github", "sealed-old")
    await store.save_upstream_tokens("u1", "github", "sealed-new")  # another worker's write
    assert not await store.delete_upstream_tokens_if("u1", "github", sealed="sealed-old")
    assert await store.load_upstream_tokens("u1", "github") == "sealed-new"
    assert await store.delete_upstream_tokens_if("u1", "github", sealed="sealed-new")
    assert await store.load_upstream_tokens("u1", "github") is None
    assert not await store.delete_upstream_tokens_if("u1", "github", sealed="sealed-new")
