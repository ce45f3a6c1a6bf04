"""The official MCP SDKs' clients, with no prior registration, against the example MCP server
(``examples/mcp/server.py``) protected by a real ``tokensmith serve`` (docs/mcp.md, "Proven with").

Each client meets the ``401``, follows ``resource_metadata`` to the RFC 9728 document and its
``authorization_servers`` to the authorization server's metadata, registers itself — by a Client
ID Metadata Document (its ``client_id`` is the URL of a document served over https by a local
server, trusted through ``SSL_CERT_FILE`` and allowed on loopback by
``TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK``) or by dynamic registration (RFC 7591) — sends the
person through login and consent in Chromium, redeems the code with PKCE and ``resource``, and
calls the tool ``whoami``, which answers with the token's subject, client and scopes.

The clients: the TypeScript SDK (``@modelcontextprotocol/sdk`` from npm, ``node/mcp_client.mjs``,
its ``OAuthClientProvider`` and ``StreamableHTTPClientTransport``; its callback is a listener of
the script) and the Python SDK (``mcp.client.auth.OAuthClientProvider`` with
``streamable_http_client``; the test catches the browser's arrival on the callback). On SQLite and
on PostgreSQL + Redis.

The refusals (no browser needed): a token for another audience at the MCP server, a document
whose ``client_id`` is not its URL, a redirect URI the document does not list, and a document on a
loopback address when the setting is off (never connected to).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.interop.conftest import Person, run_node, verify_access_token
from tests.live import (
    PASSWORD,
    READY_TIMEOUT,
    LiveServer,
    _wait_ready,
    free_port,
    serve_env,
    spawn_server,
    stop_server,
)
from tests.services import chromium_path, postgres_url, redis_url
from tests.support.database import pg_execute
from tests.support.documents import DocumentServer, document_server, make_ca_and_cert

pytest.importorskip("mcp", reason="the mcp extra (pip install 'tokensmith[mcp]')")

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MCP_SERVER = ROOT / "examples" / "mcp" / "server.py"
SCOPE = "mcp:tools"
OTHER_API = "https://other.interop.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DOCUMENT_HOST = "localhost"


@dataclass
class World:
    live: LiveServer
    mcp_url: str
    docs: DocumentServer
    alice: Person
    backend: str

    @property
    def metadata_url(self) -> str:
        parts = urlsplit(self.mcp_url)
        return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"

    def document(self, name: str, redirect_uri: str, **overrides: Any) -> str:
        """Serve a client ID metadata document at /NAME.json; its URL."""
        url = self.docs.url(f"/{name}.json", host=DOCUMENT_HOST)
        body: dict[str, Any] = {
            "client_id": url,
            "client_name": f"{name} (MCP client)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }
        body.update(overrides)
        self.docs.serve(f"/{name}.json", body)
        return url


@contextlib.contextmanager
def tokensmith_serve(
    directory: Path, *, database_url: str, extra_env: dict[str, str], **settings: str
) -> Iterator[LiveServer]:
    """``tokensmith serve`` on a free port, with ``extra_env`` (e.g. ``SSL_CERT_FILE``)."""
    port = free_port()
    env = serve_env(issuer=f"http://127.0.0.1:{port}", database_url=database_url, **settings)
    env.update(extra_env)
    server = spawn_server(directory, env, port=port)
    try:
        _wait_ready(server, time.monotonic() + READY_TIMEOUT)
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def mcp_server(directory: Path, issuer: str) -> Iterator[str]:
    """``python examples/mcp/server.py --issuer ISSUER --port PORT``; its endpoint's URL."""
    port = free_port()
    log = directory / "mcp-server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(MCP_SERVER), "--issuer", issuer, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{origin}/", timeout=1.0).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"{origin}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def backend_settings(backend: str) -> Iterator[tuple[str | None, dict[str, str]]]:
    """(database URL or None for SQLite, extra settings) for ``backend``; cleaned up after."""
    if backend == "sqlite":
        yield None, {}
        return
    import redis as redis_sync

    admin = postgres_url()
    name = f"ts_mcp_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}"'))
    url, prefix = redis_url(), f"ts-mcp-{uuid.uuid4().hex[:10]}:"
    try:
        database = make_url(admin).set(database=name).render_as_string(hide_password=False)
        yield database, {"redis_url": url, "redis_prefix": prefix}
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        client = redis_sync.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ],
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("mcp-world")
    ca, cert, key = make_ca_and_cert(directory, DOCUMENT_HOST)
    with (
        backend_settings(request.param) as (database_url, settings),
        document_server(tls=(cert, key)) as docs,
        tokensmith_serve(
            directory,
            database_url=database_url or f"sqlite+aiosqlite:///{directory / 'tokensmith.db'}",
            extra_env={"SSL_CERT_FILE": str(ca)},
            client_metadata_allow_loopback="true",
            registration="open",
            **settings,
        ) as live,
        mcp_server(directory, live.issuer) as mcp_url,
    ):
        live.cli(
            "apis",
            "create",
            "--identifier",
            mcp_url,
            "--scope",
            f"{SCOPE}=Use the MCP tools",
            "--dynamic-clients",
        )
        live.create_api(OTHER_API, ("other:read",))
        user = live.create_user("alice", email="alice@example.com", email_verified=True)
        alice = Person(id=user["id"], username="alice", email="alice@example.com", name="")
        metadata = httpx.get(live.url("/.well-known/oauth-authorization-server")).json()
        assert metadata["client_id_metadata_document_supported"] is True
        assert metadata["registration_endpoint"] == live.issuer + "/register"
        yield World(
            live=live,
            mcp_url=mcp_url,
            docs=docs,
            alice=alice,
            backend=request.param,
        )


# -- Chromium: the person signs in and allows ---------------------------------------------------


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class SignIn:
    callback_url: str
    consent_text: str


async def sign_in(
    browser: Any, authorization_url: str, callback: str, person: Person, *, intercept: bool
) -> SignIn:
    """Open the authorization URL in a new browser profile, sign in as ``person``, allow; the URL
    the browser was sent back to. ``intercept``: answer the callback in the browser (nobody
    listens on it)."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        pattern = re.compile("^" + re.escape(callback))
        if intercept:
            await page.route(
                pattern, lambda route: route.fulfill(body="<p>ok</p>", content_type="text/html")
            )
        await page.goto(authorization_url)
        await page.get_by_label("Username or email").fill(person.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        allow = page.get_by_role("button", name="Allow")
        await allow.wait_for()
        consent_text = await page.locator("main, body").first.inner_text()
        await allow.click()
        await page.wait_for_url(pattern)
        return SignIn(callback_url=page.url, consent_text=consent_text)
    finally:
        await context.close()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- the checks both SDKs must pass -------------------------------------------------------------


def assert_discovery_then_token(world: World, requests: list[dict[str, Any]]) -> None:
    """The client's own requests: 401 at the MCP endpoint naming the metadata, the RFC 9728
    document, the authorization server's metadata, a token request with PKCE and ``resource``,
    then the MCP endpoint again."""
    issuer = world.live.issuer
    first = requests[0]
    assert (first["method"], first["url"], first["status"]) == ("POST", world.mcp_url, 401)
    assert f'resource_metadata="{world.metadata_url}"' in first["www_authenticate"]
    urls = [(r["method"], r["url"].split("?")[0], r["status"]) for r in requests]
    assert ("GET", world.metadata_url, 200) in urls
    assert any(
        m == "GET" and u.startswith(issuer + "/.well-known/") and s == 200 for m, u, s in urls
    ), urls
    token = [r for r in requests if r["url"] == issuer + "/token"]
    assert [r["status"] for r in token] == [200], token
    if "form" in token[0]:  # what the SDK posted (the TypeScript script records it)
        form = token[0]["form"]
        assert form["grant_type"] == "authorization_code"
        assert form["resource"] == world.mcp_url
        assert form["code_verifier"] == "(present)"
    assert ("POST", world.mcp_url, 200) in urls[urls.index(("GET", world.metadata_url, 200)) :]


def assert_whoami(
    world: World, whoami: dict[str, Any], client_id: str, authorization: dict[str, str]
) -> None:
    """``whoami`` speaks for alice and the client, with the scopes the client asked for: the
    tools' scope (and ``offline_access``, which the Python SDK adds when the server offers
    refresh tokens)."""
    requested = authorization["scope"].split()
    assert SCOPE in requested
    assert set(requested) <= {SCOPE, "offline_access"}
    assert whoami == {
        "subject": world.alice.id,
        "client_id": client_id,
        "scopes": sorted(requested),
    }


# -- the TypeScript SDK -------------------------------------------------------------------------


async def typescript_flow(
    world: World, node: str, *, client_metadata_url: str | None, callback_port: int
) -> dict[str, Any]:
    callback = f"http://127.0.0.1:{callback_port}/callback"
    options = {
        "server_url": world.mcp_url,
        "callback_port": callback_port,
        "client_metadata_url": client_metadata_url,
        "client_name": "TypeScript SDK e2e",
        "scope": SCOPE,
    }
    async with run_node(node, "mcp_client.mjs", options) as script, chromium() as browser:
        start = await script.read()
        url = start["authorization_url"]
        query = query_of(url)
        assert query["resource"] == world.mcp_url
        assert query["code_challenge_method"] == "S256"
        assert query["redirect_uri"] == callback
        signed = await sign_in(browser, url, callback, world.alice, intercept=False)
        assert query_of(signed.callback_url)["iss"] == world.live.issuer
        result = await script.read()
    result["authorization_query"] = query
    result["consent_text"] = signed.consent_text
    return result


@pytest.mark.browser
@pytest.mark.node
async def test_typescript_sdk_with_a_client_id_metadata_document(world: World, node: str) -> None:
    port = free_port()
    url = world.document("ts-client", f"http://127.0.0.1:{port}/callback")
    result = await typescript_flow(world, node, client_metadata_url=url, callback_port=port)

    assert result["authorization_query"]["client_id"] == url
    assert result["client_information"]["client_id"] == url
    assert not any(r["url"].endswith("/register") for r in result["requests"])
    assert "Unverified application from localhost" in result["consent_text"]
    assert_discovery_then_token(world, result["requests"])
    assert result["tools"] == ["whoami"]
    assert_whoami(world, result["whoami"], url, result["authorization_query"])
    assert ("/ts-client.json", f"{DOCUMENT_HOST}:{world.docs.port}") in world.docs.requests


@pytest.mark.browser
@pytest.mark.node
async def test_typescript_sdk_with_dynamic_registration(world: World, node: str) -> None:
    result = await typescript_flow(world, node, client_metadata_url=None, callback_port=free_port())

    client_id = result["client_information"]["client_id"]
    assert not client_id.startswith("https://")
    assert result["authorization_query"]["client_id"] == client_id
    registered = [r for r in result["requests"] if r["url"] == world.live.issuer + "/register"]
    assert [r["status"] for r in registered] == [201]
    assert "registered itself" in result["consent_text"]
    assert_discovery_then_token(world, result["requests"])
    assert_whoami(world, result["whoami"], client_id, result["authorization_query"])


# -- the Python SDK -----------------------------------------------------------------------------


class MemoryStorage:
    """The client's token and client-information store (the SDK's ``TokenStorage``)."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


def python_provider(
    world: World,
    *,
    callback: str,
    client_metadata_url: str | None,
    redirect_handler: Callable[[str], Awaitable[None]],
    callback_handler: Callable[[], Awaitable[Any]],
) -> tuple[Any, MemoryStorage]:
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    storage = MemoryStorage()
    metadata = OAuthClientMetadata.model_validate(
        {
            "client_name": "Python SDK e2e",
            "redirect_uris": [callback],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": SCOPE,
        }
    )
    provider = OAuthClientProvider(
        server_url=world.mcp_url,
        client_metadata=metadata,
        storage=storage,  # type: ignore[arg-type]
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )
    return provider, storage


async def python_flow(
    world: World, *, client_metadata_url: str | None, callback: str
) -> dict[str, Any]:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult

    requests: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}

    async def record(response: httpx2.Response) -> None:
        entry = {
            "method": response.request.method,
            "url": str(response.request.url),
            "status": response.status_code,
        }
        if response.status_code == 401:
            entry["www_authenticate"] = response.headers.get("www-authenticate", "")
        requests.append(entry)

    async with chromium() as browser:

        async def redirect_handler(url: str) -> None:
            seen["authorization_query"] = query_of(url)
            signed = await sign_in(browser, url, callback, world.alice, intercept=True)
            seen["callback"] = query_of(signed.callback_url)
            seen["consent_text"] = signed.consent_text

        async def callback_handler() -> AuthorizationCodeResult:
            query = seen["callback"]
            return AuthorizationCodeResult(
                code=query["code"], state=query.get("state"), iss=query.get("iss")
            )

        provider, storage = python_provider(
            world,
            callback=callback,
            client_metadata_url=client_metadata_url,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )
        async with (
            httpx2.AsyncClient(
                auth=provider, timeout=30.0, event_hooks={"response": [record]}
            ) as http,
            streamable_http_client(world.mcp_url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("whoami", {})
    assert not result.is_error
    return {
        "requests": requests,
        "tools": [tool.name for tool in tools.tools],
        "whoami": result.structured_content,
        "client_id": storage.client_info.client_id,
        "access_token": storage.tokens.access_token,
        **seen,
    }


@pytest.mark.browser
async def test_python_sdk_with_a_client_id_metadata_document(world: World) -> None:
    callback = f"http://127.0.0.1:{free_port()}/callback"
    url = world.document("py-client", callback)
    result = await python_flow(world, client_metadata_url=url, callback=callback)

    query = result["authorization_query"]
    assert query["client_id"] == url
    assert query["resource"] == world.mcp_url
    assert query["code_challenge_method"] == "S256"
    assert result["callback"]["iss"] == world.live.issuer
    assert "Unverified application from localhost" in result["consent_text"]
    assert not any(r["url"].endswith("/register") for r in result["requests"])
    assert_discovery_then_token(world, result["requests"])
    assert result["tools"] == ["whoami"]
    assert_whoami(world, result["whoami"], url, result["authorization_query"])
    claims = await verify_access_token(world.live, result["access_token"], audience=world.mcp_url)
    assert (claims["sub"], claims["client_id"]) == (world.alice.id, url)
    assert claims["aud"] == world.mcp_url


@pytest.mark.browser
async def test_python_sdk_with_dynamic_registration(world: World) -> None:
    callback = f"http://127.0.0.1:{free_port()}/callback"
    result = await python_flow(world, client_metadata_url=None, callback=callback)

    client_id = result["client_id"]
    assert result["authorization_query"]["client_id"] == client_id
    registered = [r for r in result["requests"] if r["url"] == world.live.issuer + "/register"]
    assert [r["status"] for r in registered] == [201]
    assert "registered itself" in result["consent_text"]
    assert_discovery_then_token(world, result["requests"])
    assert_whoami(world, result["whoami"], client_id, result["authorization_query"])


# -- refusals -----------------------------------------------------------------------------------


class Stop(Exception):
    """Raised by a redirect handler to end the flow once the authorization page was seen."""


async def authorization_page(
    world: World, *, client_metadata_url: str, redirect_uri: str
) -> tuple[dict[str, str], httpx.Response]:
    """The Python SDK's client starts a sign-in with ``client_metadata_url``; the query of the
    authorization URL it built and what the authorization server answered to it."""
    import httpx2

    seen: dict[str, Any] = {}

    async def redirect_handler(url: str) -> None:
        seen["query"] = query_of(url)
        async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as ua:
            seen["response"] = await ua.get(url)
        raise Stop

    async def callback_handler() -> Any:
        raise AssertionError("no callback expected")

    provider, _ = python_provider(
        world,
        callback=redirect_uri,
        client_metadata_url=client_metadata_url,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(auth=provider, timeout=30.0) as http:
        with pytest.raises(Stop):
            await http.post(world.mcp_url, json=initialize, headers=headers)
    assert seen["query"]["client_id"] == client_metadata_url
    return seen["query"], seen["response"]


def assert_error_page(response: httpx.Response, *phrases: str) -> None:
    """An error page of the authorization server, never a redirect to the client."""
    assert response.status_code == 400, (response.status_code, response.text[:500])
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    for phrase in phrases:
        assert phrase in response.text, response.text[:2000]


async def test_a_token_for_another_audience_is_refused_by_the_mcp_server(world: World) -> None:
    client = world.live.create_client(
        "another API's service",
        grants=("client_credentials",),
        scopes=("other:read",),
        api=OTHER_API,
    )
    async with httpx.AsyncClient(timeout=10.0) as http:
        issued = await http.post(
            world.live.url("/token"),
            data={"grant_type": "client_credentials", "resource": OTHER_API},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        assert (await verify_access_token(world.live, token, audience=OTHER_API))["aud"]
        response = await http.post(
            world.mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{world.metadata_url}"' in challenge


async def test_a_document_whose_client_id_is_not_its_url_is_refused(world: World) -> None:
    callback = f"http://127.0.0.1:{free_port()}/callback"
    url = world.document(
        "impostor", callback, client_id=world.docs.url("/ts-client.json", host=DOCUMENT_HOST)
    )
    query, response = await authorization_page(
        world, client_metadata_url=url, redirect_uri=callback
    )
    assert query["resource"] == world.mcp_url
    assert_error_page(response, "exactly its URL")


async def test_a_redirect_uri_not_in_the_document_is_refused(world: World) -> None:
    listed = f"http://127.0.0.1:{free_port()}/callback"
    url = world.document("listed-callback", listed)
    other = f"http://127.0.0.1:{free_port()}/elsewhere"
    query, response = await authorization_page(world, client_metadata_url=url, redirect_uri=other)
    assert query["redirect_uri"] == other
    assert_error_page(response, "the redirect_uri is not registered for this client")


async def test_a_document_on_a_loopback_address_is_refused_without_the_setting(
    world: World, tmp_path: Path
) -> None:
    """Another server on the same kind of database, without
    ``CLIENT_METADATA_ALLOW_LOOPBACK``: the same document is refused and never fetched; the world's
    server (with the setting) accepts it."""
    if world.backend != "sqlite":
        pytest.skip("the address rule does not depend on the database")
    callback = f"http://127.0.0.1:{free_port()}/callback"
    url = world.document("private", callback)
    params = {
        "response_type": "code",
        "client_id": url,
        "redirect_uri": callback,
        "scope": SCOPE,
        "state": "s",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "resource": world.mcp_url,
    }
    before = len(world.docs.requests)
    with tokensmith_serve(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'strict.db'}",
        extra_env={"SSL_CERT_FILE": world.live.env["SSL_CERT_FILE"]},
    ) as strict:
        async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as ua:
            refused = await ua.get(strict.url("/authorize"), params=params)
    assert_error_page(refused, "loopback")
    assert world.docs.requests[before:] == []  # never connected to
    async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as ua:
        accepted = await ua.get(world.live.url("/authorize"), params=params)
    assert accepted.status_code in (302, 303), accepted.text[:500]
    assert urlsplit(accepted.headers["location"]).path == "/login"
    assert ("/private.json", f"{DOCUMENT_HOST}:{world.docs.port}") in world.docs.requests
