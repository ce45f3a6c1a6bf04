"""The client toolkit signing in through a real tokensmith authorization server (issue 6).

Both run in-process on loopback ports over real HTTP: the app built with ``tokensmith.client``
(OpenID Connect by discovery from the server's issuer URL) and the tokensmith server (its login
and consent pages, token endpoint, JWKS, userinfo and RP-initiated logout). A browser-like httpx
client with one cookie jar drives the pages.
"""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from tests.server.harness import hidden_fields
from tests.support.settings import FAST_HASH
from tokensmith.admin import Admin
from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    ExternalIdentity,
    OIDCProvider,
    SqlLoginStore,
    create_all,
    link_by_provider_subject,
)
from tokensmith.demo.servers import serve
from tokensmith.server.app import create_app
from tokensmith.settings import Settings

PASSWORD = "correct horse battery"
API = "https://api.clouddocs.test"


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class Clock:
    """The app's clock, movable after login to make stored tokens look expired."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


@dataclass
class World:
    issuer: str
    app_url: str
    auth: ClientAuth
    admin: Admin
    clock: Clock
    identities: list[ExternalIdentity] = field(default_factory=list)
    user_id: str = ""
    other_url: str = ""
    """A second toolkit app on the same host (another port), its own client and database."""
    other: ClientAuth | None = None


async def toolkit_app(
    *,
    admin: Admin,
    issuer: str,
    app_url: str,
    name: str,
    store: SqlLoginStore,
    http: httpx.AsyncClient,
    clock: Clock,
    found: list[ExternalIdentity],
) -> tuple[ClientAuth, FastAPI]:
    """An app built with ``tokensmith.client`` signing in through ``issuer``: its defaults (the
    same secret key for every app, on purpose: only the cookie names keep them apart)."""
    client = await admin.create_client(
        name=name,
        client_type="confidential",
        redirect_uris=[f"{app_url}/auth/tokensmith/callback"],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile", "email", "offline_access", "docs:read"],
        api=API,
        post_logout_redirect_uris=[f"{app_url}/"],
    )
    assert client.client_secret is not None
    link = link_by_provider_subject(store)

    async def hook(identity: ExternalIdentity) -> str:
        found.append(identity)
        return await link(identity)

    auth = ClientAuth(
        ClientConfig(
            secret_key=b"k" * 32,
            base_url=app_url,
            providers={
                "tokensmith": OIDCProvider(
                    issuer=issuer,
                    client_id=client.client.client_id,
                    client_secret=client.client_secret,
                    scopes=("openid", "profile", "email", "offline_access", "docs:read"),
                    timeout=5.0,
                )
            },
        ),
        store=store,
        http=http,
        find_or_create_user=hook,
        clock=clock,
    )
    app = FastAPI()
    app.include_router(auth.router)

    OptionalSession = Annotated[ActiveSession | None, Depends(auth.optional_session)]

    @app.get("/")
    async def home(session: OptionalSession) -> dict[str, Any]:
        return {"signed_in": session is not None}

    return auth, app


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    as_sock, app_sock, other_sock = loopback_socket(), loopback_socket(), loopback_socket()
    issuer = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    other_url = f"http://127.0.0.1:{other_sock.getsockname()[1]}"
    # the server's default cookie names: the point of trap 1 (issue 15) is that they never
    # collide with the toolkit's on one host
    settings = Settings(issuer=issuer, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    other_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await create_all(engine)
    await create_all(other_engine)
    http = httpx.AsyncClient(timeout=10.0)
    clock = Clock()
    async with Admin(settings) as admin:
        await admin.create_api(identifier=API, scopes=["docs:read"], name="CloudDocs API")
        user = await admin.create_user(
            username="alice",
            password=PASSWORD,
            email="alice@example.com",
            email_verified=True,
            name="Alice Liddell",
        )
        found: list[ExternalIdentity] = []
        auth, app = await toolkit_app(
            admin=admin,
            issuer=issuer,
            app_url=app_url,
            name="Toolkit app",
            store=SqlLoginStore(engine),
            http=http,
            clock=clock,
            found=found,
        )
        other, other_app = await toolkit_app(
            admin=admin,
            issuer=issuer,
            app_url=other_url,
            name="Other app",
            store=SqlLoginStore(other_engine),
            http=http,
            clock=clock,
            found=[],
        )

        stop = asyncio.Event()
        server_app = create_app(settings)
        task = asyncio.create_task(
            serve(
                [(server_app, as_sock), (app, app_sock), (other_app, other_sock)],
                settings=settings,
                stop=stop,
                on_started=None,
            )
        )
        ok = False
        try:
            for _ in range(500):  # bounded: up to 10 s for the servers to answer
                try:
                    async with httpx.AsyncClient() as probe:
                        await probe.get(f"{issuer}/jwks.json")
                        await probe.get(f"{app_url}/")
                        await probe.get(f"{other_url}/")
                    ok = True
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            assert ok, "the servers did not start"
            world = World(issuer, app_url, auth, admin, clock, found, user.id, other_url, other)
            yield world
        finally:
            stop.set()
            await task
            await http.aclose()
            await engine.dispose()
            await other_engine.dispose()
            for sock in (as_sock, app_sock, other_sock):
                sock.close()


async def follow(
    ua: httpx.AsyncClient,
    response: httpx.Response,
    world: World,
    decision: str = "allow",
    *,
    app_url: str | None = None,
) -> httpx.Response:
    """Act as the user on tokensmith's pages until the browser lands on the app again."""
    app_url = app_url or world.app_url
    for _ in range(15):
        if response.status_code in (302, 303):
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(app_url + "/auth/tokensmith/callback"):
                return await ua.get(location)
            response = await ua.get(location)
            continue
        if response.status_code != 200 or not str(response.url).startswith(world.issuer + "/"):
            return response
        fields = hidden_fields(response.text)
        if response.url.path == "/login":
            fields.update(username="alice", password=PASSWORD)
        elif response.url.path == "/consent":
            fields["decision"] = decision
        else:
            return response
        response = await ua.post(str(response.url.copy_with(query=None)), data=fields)
    raise AssertionError("the flow did not finish")


@pytest.fixture
async def ua() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as client:
        yield client


async def sign_in(
    ua: httpx.AsyncClient, world: World, app_url: str | None = None
) -> httpx.Response:
    app_url = app_url or world.app_url
    start = await ua.get(f"{app_url}/auth/tokensmith/login?next=/")
    assert start.status_code == 302
    assert start.headers["location"].startswith(f"{world.issuer}/authorize?")
    return await follow(ua, start, world, app_url=app_url)


async def test_login_through_tokensmith_gives_a_verified_identity_and_session(
    world: World, ua: httpx.AsyncClient
) -> None:
    callback = await sign_in(ua, world)
    assert callback.status_code == 303, callback.text[:500]
    assert callback.headers["location"] == f"{world.app_url}/"
    assert world.auth.config.session_cookie_name in callback.cookies
    [identity] = world.identities
    assert identity.provider == "tokensmith"
    assert identity.issuer == world.issuer
    assert identity.subject == world.user_id
    assert identity.email == "alice@example.com"
    assert identity.email_verified is True
    assert identity.name == "Alice Liddell"
    info = (await ua.get(f"{world.app_url}/auth/session")).json()
    assert info["authenticated"] is True
    assert info["provider"] == "tokensmith"
    assert (await ua.get(f"{world.app_url}/")).json() == {"signed_in": True}


async def test_upstream_tokens_call_userinfo_and_refresh_through_rotation(
    world: World, ua: httpx.AsyncClient
) -> None:
    await sign_in(ua, world)
    session = await world.auth.sessions.load(ua.cookies.get(world.auth.config.session_cookie_name))
    assert session is not None
    api = world.auth.api(session)
    userinfo = f"{world.issuer}/userinfo"
    first = await api.get(userinfo)
    assert first.status_code == 200
    assert first.json()["sub"] == world.user_id
    before = await world.auth.vault.load(session.user_id, "tokensmith")
    world.clock.offset = 3600.0  # the stored access token now looks expired to the app
    second = await api.get(userinfo)
    assert second.status_code == 200
    after = await world.auth.vault.load(session.user_id, "tokensmith")
    assert before is not None
    assert after is not None
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # tokensmith rotated it


async def test_logout_ends_the_app_session_and_the_tokensmith_session(
    world: World, ua: httpx.AsyncClient
) -> None:
    await sign_in(ua, world)
    csrf = (await ua.get(f"{world.app_url}/auth/session")).json()["csrf_token"]
    out = await ua.post(f"{world.app_url}/auth/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    end_session = urlsplit(out.headers["location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == (
        f"{world.issuer}/logout"
    )
    query = parse_qs(end_session.query)
    assert query["post_logout_redirect_uri"] == [f"{world.app_url}/"]
    assert "id_token_hint" in query
    back = await ua.get(out.headers["location"])
    assert back.status_code == 302  # a valid id_token_hint: no confirmation page
    assert back.headers["location"].rstrip("?") == f"{world.app_url}/"
    assert (await ua.get(f"{world.app_url}/auth/session")).json() == {"authenticated": False}
    # the tokensmith session is gone as well: a new sign-in asks for the password again
    again = await ua.get(f"{world.app_url}/auth/tokensmith/login?next=/")
    authorize = await ua.get(again.headers["location"])
    assert urlsplit(authorize.headers["location"]).path == "/login"


async def test_deny_at_consent_is_a_clear_page_and_no_session(
    world: World, ua: httpx.AsyncClient
) -> None:
    start = await ua.get(f"{world.app_url}/auth/tokensmith/login?next=/")
    page = await follow(ua, start, world, decision="deny")
    assert page.status_code == 400
    assert "Sign-in cancelled" in page.text
    assert world.identities == []
    assert (await ua.get(f"{world.app_url}/auth/session")).json() == {"authenticated": False}


async def test_replayed_callback_is_refused(world: World, ua: httpx.AsyncClient) -> None:
    start = await ua.get(f"{world.app_url}/auth/tokensmith/login?next=/")
    response = start
    for _ in range(15):  # stop just before the callback, to replay its URL
        location = urljoin(str(response.url), response.headers.get("location", ""))
        if response.status_code in (302, 303) and location.startswith(world.app_url):
            break
        response = await follow_one(ua, response, world)
    callback_url = urljoin(str(response.url), response.headers["location"])
    first = await ua.get(callback_url)
    assert first.status_code == 303
    replay = await ua.get(callback_url)
    assert replay.status_code == 400
    assert len(world.identities) == 1


async def follow_one(
    ua: httpx.AsyncClient, response: httpx.Response, world: World
) -> httpx.Response:
    if response.status_code in (302, 303):
        return await ua.get(urljoin(str(response.url), response.headers["location"]))
    fields = hidden_fields(response.text)
    if response.url.path == "/login":
        fields.update(username="alice", password=PASSWORD)
    else:
        fields["decision"] = "allow"
    return await ua.post(str(response.url.copy_with(query=None)), data=fields)


# -- trap 1 of issue 15: the server and toolkit apps on one host share one cookie jar ------------


async def test_server_sso_survives_a_toolkit_login_on_the_same_host(
    world: World, ua: httpx.AsyncClient
) -> None:
    """The server and the app both run on 127.0.0.1 (cookies are not isolated by port): after
    signing in to the app, the server's /account still knows the user and a second app signs in
    by SSO, without the password. With colliding default names the app's session cookie
    overwrote the server's and /account said "You are not signed in"."""
    callback = await sign_in(ua, world)
    assert callback.status_code == 303, callback.text[:500]
    account = await ua.get(f"{world.issuer}/account")
    assert account.status_code == 200, account.text[:300]
    assert "Signed in as <strong>alice</strong>" in account.text
    names = {cookie.name for cookie in ua.cookies.jar}
    assert world.auth.config.session_cookie_name in names
    assert "tokensmith_as_session" in names
    # SSO: the other app's sign-in passes the server without a login form
    start = await ua.get(f"{world.other_url}/auth/tokensmith/login?next=/")
    authorize = await ua.get(start.headers["location"])
    assert urlsplit(authorize.headers["location"]).path != "/login"
    assert (await ua.get(f"{world.app_url}/")).json() == {"signed_in": True}


async def test_two_toolkit_apps_on_one_host_stay_signed_in_independently(
    world: World, ua: httpx.AsyncClient
) -> None:
    assert world.other is not None
    assert world.other.config.session_cookie_name != world.auth.config.session_cookie_name
    await sign_in(ua, world)
    assert (await ua.get(f"{world.app_url}/")).json() == {"signed_in": True}
    assert (await ua.get(f"{world.other_url}/")).json() == {"signed_in": False}
    callback = await sign_in(ua, world, world.other_url)
    assert callback.status_code == 303, callback.text[:500]
    assert (await ua.get(f"{world.app_url}/")).json() == {"signed_in": True}
    assert (await ua.get(f"{world.other_url}/")).json() == {"signed_in": True}
    # signing out of one app (locally: its own session cookie) leaves the other signed in
    csrf = (await ua.get(f"{world.app_url}/auth/session")).json()["csrf_token"]
    await ua.post(f"{world.app_url}/auth/logout", data={"csrf_token": csrf})
    assert (await ua.get(f"{world.app_url}/")).json() == {"signed_in": False}
    assert (await ua.get(f"{world.other_url}/")).json() == {"signed_in": True}
