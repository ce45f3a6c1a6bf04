import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.client.fake_github import FakeGitHub
from tests.client.fake_oidc import FakeOIDC
from tests.client.servers import serve
from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    ExternalIdentity,
    GitHubProvider,
    OIDCProvider,
    Provider,
    ReloginRequired,
    SqlLoginStore,
    create_all,
    link_by_provider_subject,
)

APP = "https://app.test"
# The toolkit's default cookie names: tsc_ + 8 hex digits of SHA-256(base_url).
APP_COOKIE = "__Host-tsc_" + hashlib.sha256(APP.encode()).hexdigest()[:8]
SESSION_COOKIE = APP_COOKIE + "_session"
JWT_SHAPED = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
SECRET_IN_URL = re.compile(r"(?:^|[?&#;])(?:token|access_token|id_token|refresh_token)=", re.I)


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    async with serve(fake.app):
        yield fake


@pytest.fixture
async def fake_oidc() -> AsyncIterator[FakeOIDC]:
    fake = FakeOIDC()
    async with serve(fake.app):
        yield fake


@pytest.fixture
async def engine(tmp_path: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/client.db")
    await create_all(engine)
    yield engine
    await engine.dispose()


def github_provider(fake: FakeGitHub, **kw: Any) -> GitHubProvider:
    return GitHubProvider(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        base_url=fake.url,
        api_url=fake.url,
        timeout=5.0,
        **kw,
    )


def oidc_provider(fake: FakeOIDC, **kw: Any) -> OIDCProvider:
    return OIDCProvider(
        issuer=fake.issuer,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        timeout=5.0,
        **kw,
    )


@dataclass
class Env:
    app: FastAPI
    auth: ClientAuth
    store: SqlLoginStore
    engine: AsyncEngine
    identities: list[ExternalIdentity] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        """A fresh browser with its own cookie jar: the app over ASGI, providers over HTTP."""
        client = httpx.AsyncClient(
            mounts={APP: httpx.ASGITransport(app=self.app)},
            follow_redirects=False,
            timeout=10.0,
        )
        self.clients.append(client)
        return client

    async def count(self, table: str) -> int:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


def build_app(auth: ClientAuth) -> FastAPI:
    app = FastAPI()
    app.include_router(auth.router)
    Session = Annotated[ActiveSession, Depends(auth.require_session)]

    @app.get("/me")
    async def me(session: Session) -> dict[str, str]:
        return {"user_id": session.user_id, "provider": session.provider}

    @app.get("/me/upstream")
    async def upstream(session: Session) -> JSONResponse:
        try:
            response = await auth.api(session).get("/user")
        except ReloginRequired:
            return JSONResponse({"relogin": True}, status_code=401)
        return JSONResponse(response.json(), status_code=response.status_code)

    return app


MakeEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env(engine: AsyncEngine) -> AsyncIterator[MakeEnv]:
    created: list[tuple[Env, httpx.AsyncClient]] = []

    async def make(providers: dict[str, Provider], **overrides: Any) -> Env:
        http = httpx.AsyncClient(timeout=5.0)
        store = SqlLoginStore(engine)
        identities: list[ExternalIdentity] = []
        default = link_by_provider_subject(store)

        async def hook(identity: ExternalIdentity) -> str:
            identities.append(identity)
            return await default(identity)

        clock = overrides.pop("clock", time.time)
        error_page = overrides.pop("error_page", None)
        config = ClientConfig(
            secret_key=secrets.token_bytes(32),
            base_url=overrides.pop("base_url", APP),
            providers=providers,
            **overrides,
        )
        auth = ClientAuth(
            config,
            store=store,
            http=http,
            find_or_create_user=hook,
            clock=clock,
            error_page=error_page,
        )
        env = Env(app=build_app(auth), auth=auth, store=store, engine=engine, identities=identities)
        created.append((env, http))
        return env

    yield make
    for env, http in created:
        for client in env.clients:
            await client.aclose()
        await http.aclose()


@dataclass
class Flow:
    start: httpx.Response
    authorize: httpx.Response | None
    callback: httpx.Response | None

    @property
    def callback_url(self) -> str:
        assert self.authorize is not None
        return self.authorize.headers["location"]

    def locations(self) -> list[str]:
        return [
            r.headers["location"]
            for r in (self.start, self.authorize, self.callback)
            if r is not None and "location" in r.headers
        ]


async def login(
    browser: httpx.AsyncClient, provider: str, *, next: str | None = None, complete: bool = True
) -> Flow:
    """Press "Login with ...", let the provider auto-approve, and deliver its redirect."""
    params = {"next": next} if next is not None else None
    start = await browser.get(f"{APP}/auth/{provider}/login", params=params)
    if start.status_code != 302:
        return Flow(start, None, None)
    authorize = await browser.get(start.headers["location"])
    assert authorize.status_code == 302, authorize.text
    if not complete:
        return Flow(start, authorize, None)
    callback = await browser.get(authorize.headers["location"])
    return Flow(start, authorize, callback)


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE and "Max-Age=0" not in header:
            return rest.split(";", 1)[0]
    return None


def assert_error_page(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert f"Error: {error}" in response.text
    assert "Traceback" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert session_cookie(response) is None


def assert_no_secret_in_locations(flow: Flow) -> None:
    for location in flow.locations():
        assert not SECRET_IN_URL.search(location), location
        assert not JWT_SHAPED.search(location), location


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now
