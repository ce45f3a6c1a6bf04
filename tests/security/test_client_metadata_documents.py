"""Client ID Metadata Documents (issue 16 item 2): the SSRF rules of fetching them, each against a
local server on a refused address (tokensmith.server.client_documents), what a document must say
(tokensmith.core.metadata_document), and the whole flow through the real /authorize, login,
consent and /token with a document served from 127.0.0.1 under
TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK, on SQLite, PostgreSQL and PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.server.harness import ServerEnv, assert_page, hidden_fields, query_of
from tests.support.documents import Answer, DocumentServer, document_server, make_ca_and_cert
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.core.metadata_document import (
    DocumentError,
    check_client_id_url,
    client_from_document,
    domain_allowed,
)
from tokensmith.core.registration import NewClient
from tokensmith.server.client_documents import (
    HttpDocumentFetcher,
    address_refusal,
    cache_lifetime,
)
from tokensmith.settings import Settings

MCP = "https://mcp.test/mcp"
CALLBACK = "http://127.0.0.1:33418/callback"


def document(url: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "client_id": url,
        "client_name": "Friendly MCP Client",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


@pytest.fixture
def docs() -> Iterator[DocumentServer]:
    with document_server() as server:
        yield server


def fetcher(*, allow_loopback: bool = True, resolver: Any = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"max_bytes": 5 * 1024, "timeout": 2.0, "max_cache": 3600}
    options.update(kwargs)
    if resolver is not None:
        options["resolver"] = resolver
    return HttpDocumentFetcher(allow_loopback=allow_loopback, **options)


def resolving_to(*addresses: str) -> Any:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# -- the fetch: SSRF rules, each against the local server -----------------------------------------


async def test_a_document_on_127_0_0_1_is_refused_without_the_loopback_setting(
    docs: DocumentServer,
) -> None:
    url = docs.serve("/client.json", document("x"))
    with pytest.raises(DocumentError, match="loopback"):
        await fetcher(allow_loopback=False).fetch(url)
    # and a public-looking name resolving to it is refused the same way
    named = docs.url("/client.json", host="docs.example")
    with pytest.raises(DocumentError, match="loopback"):
        await fetcher(allow_loopback=False, resolver=resolving_to("127.0.0.1")).fetch(named)
    assert docs.requests == []  # never connected to
    # the same document with the setting: fetched
    fetched = await fetcher(allow_loopback=True).fetch(url)
    assert json.loads(fetched.body)["client_id"] == "x"


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space (CGNAT)
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",  # documentation
        "240.0.0.1",  # reserved
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fec0::1",  # site-local (deprecated by RFC 3879, still routed inside some networks)
    ],
)
async def test_a_host_resolving_to_a_refused_address_is_never_connected_to(
    docs: DocumentServer, address: str
) -> None:
    docs.serve("/client.json", document("x"))
    url = docs.url("/client.json", host="docs.example")
    with pytest.raises(DocumentError, match="refused address"):
        await fetcher(allow_loopback=False, resolver=resolving_to(address)).fetch(url)
    assert docs.requests == []


async def test_a_mixed_answer_with_one_refused_address_is_refused(docs: DocumentServer) -> None:
    docs.serve("/client.json", document("x"))
    url = docs.url("/client.json", host="docs.example")
    resolver = resolving_to("127.0.0.1", "10.0.0.1")
    with pytest.raises(DocumentError, match=r"10\.0\.0\.1"):
        await fetcher(allow_loopback=True, resolver=resolver).fetch(url)
    assert docs.requests == []


def test_public_addresses_pass_the_address_check() -> None:
    for address in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"):
        assert address_refusal(address, allow_loopback=False) is None
    assert address_refusal("::ffff:127.0.0.1", allow_loopback=True) is None
    assert address_refusal("::ffff:127.0.0.1", allow_loopback=False) is not None


async def test_the_connection_goes_to_the_checked_address_with_the_host_name(
    docs: DocumentServer,
) -> None:
    """Resolved once, checked, connected to by address: a name no DNS knows is fetched through
    the injected answer, with its own Host header (no second lookup for a rebinding to win)."""
    docs.serve("/client.json", document("x"))
    url = docs.url("/client.json", host="docs.example")
    resolver = resolving_to("127.0.0.1")
    await fetcher(allow_loopback=True, resolver=resolver).fetch(url)
    assert resolver.calls == ["docs.example"]
    assert docs.requests == [("/client.json", f"docs.example:{docs.port}")]


async def test_https_to_the_checked_address_verifies_the_certificate_for_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pinned connection still verifies TLS for the URL's host (SNI and hostname check), the
    trust comes from the system store plus SSL_CERT_FILE, and a certificate for another name or
    from an untrusted CA is refused."""
    ca, cert, key = make_ca_and_cert(tmp_path, "docs.example")
    with document_server(tls=(cert, key)) as docs:
        docs.serve("/client.json", document("x"))
        url = docs.url("/client.json", host="docs.example")
        resolver = resolving_to("127.0.0.1")
        with pytest.raises(DocumentError):  # the test CA is not in the system store
            await fetcher(resolver=resolver).fetch(url)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        fetched = await fetcher(resolver=resolver).fetch(url)
        assert json.loads(fetched.body)["client_id"] == "x"
        assert docs.requests == [("/client.json", f"docs.example:{docs.port}")]
        other = docs.url("/client.json", host="other.example")  # same address, other name
        with pytest.raises(DocumentError):
            await fetcher(resolver=resolver).fetch(other)
        assert len(docs.requests) == 1


async def test_a_redirect_is_not_followed(docs: DocumentServer) -> None:
    docs.answers["/moved"] = Answer(status=302, headers={"Location": docs.url("/client.json")})
    docs.serve("/client.json", document("x"))
    with pytest.raises(DocumentError, match="redirect"):
        await fetcher().fetch(docs.url("/moved"))
    assert [path for path, _ in docs.requests] == ["/moved"]


async def test_an_oversized_document_is_refused(docs: DocumentServer) -> None:
    big = document("x", client_name="x" * 8000)
    with pytest.raises(DocumentError, match="cap"):
        await fetcher(max_bytes=5 * 1024).fetch(docs.serve("/big.json", big))


async def test_a_slow_document_is_refused(docs: DocumentServer) -> None:
    url = docs.serve("/slow.json", document("x"), delay=3.0)
    with pytest.raises(DocumentError, match="no complete answer"):
        await fetcher(timeout=0.3).fetch(url)


async def test_an_answer_that_is_not_a_json_200_is_refused(docs: DocumentServer) -> None:
    html = docs.serve("/page", b"<html></html>", headers={"Content-Type": "text/html"})
    with pytest.raises(DocumentError, match="application/json"):
        await fetcher().fetch(html)
    with pytest.raises(DocumentError, match="404"):
        await fetcher().fetch(docs.url("/missing.json"))


async def test_the_cache_lifetime_follows_cache_control_up_to_the_bound(
    docs: DocumentServer,
) -> None:
    url = docs.serve(
        "/client.json",
        document("x"),
        headers={"Content-Type": "application/json", "Cache-Control": "max-age=999999"},
    )
    assert (await fetcher(max_cache=3600).fetch(url)).max_age == 3600
    assert cache_lifetime("public, max-age=60", upper=3600) == 60
    assert cache_lifetime("no-store", upper=3600) == 0
    assert cache_lifetime("no-cache, max-age=60", upper=3600) == 0
    assert cache_lifetime(None, upper=3600) == 300
    assert cache_lifetime(None, upper=10) == 10


# -- the URL and the document ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://app.example/client.json", "https"),
        ("ftp://app.example/client.json", "https"),
        ("https://app.example", "path"),
        ("https://app.example/", "path"),
        ("https://user:pw@app.example/client.json", "user"),
        ("https://app.example/client.json#x", "fragment"),
        ("https://app.example/a/../client.json", r"\.\."),
        ("https://app.example/" + "a" * 200, "128"),
        ("http://127.0.0.1:8000/client.json", "https"),  # loopback without the setting
    ],
)
def test_client_id_urls_refused(url: str, words: str) -> None:
    with pytest.raises(DocumentError, match=words):
        check_client_id_url(url, allow_loopback=False)


def test_loopback_http_client_id_only_under_the_setting() -> None:
    url = "http://127.0.0.1:8000/client.json"
    assert check_client_id_url(url, allow_loopback=True) == url
    with pytest.raises(DocumentError):
        check_client_id_url("http://10.0.0.1/client.json", allow_loopback=True)


URL = "https://app.example/client.json"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"client_id": "https://app.example/other.json"}, "exactly its URL"),
        ({"client_id": URL + "/"}, "exactly its URL"),
        ({"client_secret": "s"}, "client_secret"),
        ({"client_secret_expires_at": 0}, "client_secret"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "no shared secrets"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "JWKS"),
        ({"jwks_uri": "https://app.example/jwks"}, "jwks_uri"),
        ({"grant_types": ["implicit"]}, "implicit"),
        ({"grant_types": ["password"]}, "password"),
        ({"grant_types": ["client_credentials"]}, "not available"),
        ({"response_types": ["token"]}, "response_types"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": ["http://app.example/cb"]}, "loopback"),
        ({"redirect_uris": ["https://app.example/cb#f"]}, "fragment"),
        ({"redirect_uris": "https://app.example/cb"}, "list"),
        ({"scope": ["a"]}, "scope"),
        ({"client_name": ""}, "client_name"),
    ],
)
def test_documents_refused(fields: dict[str, Any], words: str) -> None:
    raw = json.dumps(document(URL, **fields)).encode()
    with pytest.raises(DocumentError, match=words):
        client_from_document(URL, raw, now=0)


def test_a_document_becomes_a_public_dynamic_client() -> None:
    raw = json.dumps(document(URL, scope="mcp:tools")).encode()
    client = client_from_document(URL, raw, now=5)
    assert client.origin == "metadata_document"
    assert client.is_dynamic
    assert not client.first_party
    assert client.apis == ()
    assert (client.client_type, client.token_endpoint_auth_method) == ("public", "none")
    assert client.redirect_uris == (CALLBACK,)
    assert client.scopes == ("mcp:tools",)
    nameless = client_from_document(
        URL, json.dumps(document(URL, client_name=None)).encode(), now=0
    )
    assert nameless.name == "app.example"  # the domain, when it gives no name


def test_a_document_with_keys_is_a_private_key_jwt_client() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    raw = json.dumps(
        document(URL, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]})
    ).encode()
    client = client_from_document(URL, raw, now=0)
    assert (client.client_type, client.token_endpoint_auth_method) == (
        "confidential",
        "private_key_jwt",
    )
    assert client.jwks is not None


def test_operator_domain_lists() -> None:
    assert domain_allowed("app.example", allowed=(), blocked=())
    assert not domain_allowed("evil.example", allowed=(), blocked=("evil.example",))
    assert not domain_allowed("a.evil.example", allowed=(), blocked=("evil.example",))
    assert domain_allowed("notevil.example", allowed=(), blocked=("evil.example",))
    assert domain_allowed("vscode.dev", allowed=("vscode.dev", "claude.ai"), blocked=())
    assert not domain_allowed("other.dev", allowed=("vscode.dev",), blocked=())


# -- through the server ---------------------------------------------------------------------------


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.postgres)])
async def cimd_env(
    request: pytest.FixtureRequest, database_url: str, clock: FakeClock
) -> AsyncIterator[ServerEnv]:
    """The server with metadata documents allowed on loopback (the development setting), on
    each database, and with Redis for the short-lived state."""
    options: dict[str, Any] = {"client_metadata_allow_loopback": True}
    if request.param == "redis":
        if database_url.startswith("sqlite"):
            pytest.skip("Redis runs beside PostgreSQL")
        import uuid

        from tests.services import redis_url

        options.update(redis_url=redis_url(), redis_prefix=f"ts-test-{uuid.uuid4().hex[:10]}:")
    settings = Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH, **options)  # type: ignore[arg-type]
    async with ServerEnv.start(settings, clock) as env:
        yield env


async def mcp_api(env: ServerEnv, *, dynamic: bool = True) -> None:
    await env.admin.create_api(
        identifier=MCP, scopes=("mcp:tools",), name="MCP server", dynamic_clients=dynamic
    )
    await env.user()


@asynccontextmanager
async def loopback_server(sqlite_url: str, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """The server on SQLite (one connection: a request holding it during a fetch would show),
    metadata documents allowed on loopback, the MCP API registered."""
    settings = Settings(
        issuer=ISSUER,
        database_url=sqlite_url,
        client_metadata_allow_loopback=True,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        await mcp_api(env)
        yield env


def as_client(url: str, doc: dict[str, Any]) -> NewClient:
    return NewClient(client_from_document(url, json.dumps(doc).encode(), now=0), None)


async def test_the_whole_flow_with_a_metadata_document(
    cimd_env: ServerEnv, docs: DocumentServer
) -> None:
    env = cimd_env
    await mcp_api(env)
    url = docs.url("/client.json")
    docs.serve("/client.json", document(url))
    metadata = (await env.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["client_id_metadata_document_supported"] is True
    client = as_client(url, document(url))
    ua = env.browser()
    # the consent page: unverified, its domain prominent
    started = await env.start_authorize(ua, client, resource=MCP, scope="mcp:tools")
    page = await env.login(ua, started.response, decision=None)
    assert "Unverified application from" in page.text
    assert '<span class="client-domain">127.0.0.1</span>' in page.text
    # allow, redeem with PKCE and the resource
    flow = await env.authorize(ua, client, resource=MCP, scope="mcp:tools")
    response = await env.redeem(client, flow.code, flow.verifier, auth="none", resource=MCP)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = await env.decode_access_token(body["access_token"], audience=MCP)
    assert (claims["aud"], claims["client_id"], body["scope"]) == (MCP, url, "mcp:tools")
    # the refresh token works on its own, for the same audience only
    refreshed = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, auth="none"
    )
    assert refreshed.status_code == 200, refreshed.text
    # the user sees the application on the account page (named by its domain: the document is
    # not fetched for that page) and removes it, which revokes its tokens
    account = await ua.get("/account")
    assert "127.0.0.1 (unverified)" in account.text
    removed = await ua.post("/account", data=hidden_fields(account.text))
    assert removed.status_code == 303
    again = await env.token(
        client,
        {"grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]},
        auth="none",
    )
    assert again.json()["error"] == "invalid_grant"


async def test_refusals_through_the_authorization_endpoint(
    cimd_env: ServerEnv, docs: DocumentServer
) -> None:
    env = cimd_env
    await mcp_api(env)
    ua = env.browser()
    # client_id in the document differs from its URL: an error page, never a redirect
    url = docs.url("/mismatch.json")
    docs.serve("/mismatch.json", document(docs.url("/other.json")))
    response = await env.start_authorize(ua, as_client(url, document(url)), resource=MCP)
    assert_page(response.response)
    assert "exactly its URL" in response.response.text
    # a redirect URI that is not in the document: an error page
    url = docs.serve("/client.json", document(docs.url("/client.json")))
    client = as_client(url, document(url))
    response = await env.start_authorize(
        ua, client, resource=MCP, redirect_uri="http://127.0.0.1:9/elsewhere"
    )
    assert_page(response.response)
    # no resource, or an API not open to dynamic clients: invalid_target to the client
    for resource in (None, "https://closed.test"):
        if resource is not None:
            await env.admin.create_api(identifier=resource, scopes=("x",))
        started = await env.start_authorize(ua, client, resource=resource, scope="mcp:tools")
        assert started.response.status_code == 302
        assert query_of(started.response.headers["location"])["error"] == "invalid_target"


async def test_loopback_documents_are_refused_by_default(
    server_env: ServerEnv, docs: DocumentServer
) -> None:
    await mcp_api(server_env)
    url = docs.serve("/client.json", document(docs.url("/client.json")))
    started = await server_env.start_authorize(
        server_env.browser(), as_client(url, document(url)), resource=MCP
    )
    assert_page(started.response)
    assert docs.requests == []


async def test_metadata_documents_can_be_turned_off(
    settings: Settings, clock: FakeClock, docs: DocumentServer
) -> None:
    off = settings.model_copy(
        update={"client_metadata_documents": False, "client_metadata_allow_loopback": True}
    )
    async with ServerEnv.start(off, clock) as env:
        await mcp_api(env)
        metadata = (await env.http.get("/.well-known/oauth-authorization-server")).json()
        assert "client_id_metadata_document_supported" not in metadata
        url = docs.serve("/client.json", document(docs.url("/client.json")))
        started = await env.start_authorize(env.browser(), as_client(url, document(url)))
        assert_page(started.response)
        assert docs.requests == []


async def test_a_document_is_fetched_once_and_shared_by_every_process(
    cimd_env: ServerEnv, docs: DocumentServer
) -> None:
    """A second server on the same database (and Redis) is another process: it uses the kept
    document; one marked no-store is fetched again."""
    env = cimd_env
    await mcp_api(env)
    cached = docs.url("/cached.json")
    docs.serve(
        "/cached.json",
        document(cached),
        headers={"Content-Type": "application/json", "Cache-Control": "max-age=600"},
    )
    fresh = docs.url("/fresh.json")
    docs.serve(
        "/fresh.json",
        document(fresh),
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )
    async with ServerEnv.start(env.settings, env.clock) as other:
        for server in (env, other):
            for url in (cached, fresh):
                started = await server.start_authorize(
                    server.browser(), as_client(url, document(url)), resource=MCP
                )
                assert started.response.status_code == 302, started.response.text
    assert [path for path, _ in docs.requests] == ["/cached.json", "/fresh.json", "/fresh.json"]


async def test_a_failing_document_is_not_fetched_again_at_once(
    cimd_env: ServerEnv, docs: DocumentServer
) -> None:
    env = cimd_env
    await mcp_api(env)
    url = docs.url("/broken.json")
    docs.serve("/broken.json", b"not json")
    client = as_client(url, document(url))
    for _ in range(3):
        started = await env.start_authorize(env.browser(), client, resource=MCP)
        assert_page(started.response)
    assert [path for path, _ in docs.requests] == ["/broken.json"]


async def test_a_slow_document_holds_no_database_connection(
    sqlite_url: str, clock: FakeClock, docs: DocumentServer
) -> None:
    """M-05/M-07: whoever starts an authorization request chooses the document's server, and
    so how long its fetch takes (up to client_metadata_timeout). Meanwhile other requests must
    be answered: the fetch may not hold the request's transaction (on SQLite the process's one
    connection; on PostgreSQL one of the pool's, so a few slow documents in parallel would
    exhaust it)."""
    async with loopback_server(sqlite_url, clock) as env:
        machine = await env.client(grant_types=["client_credentials"], apis=[MCP])
        url = docs.url("/slow.json")
        docs.serve("/slow.json", document(url), delay=3.0)
        client = as_client(url, document(url))
        ua = env.browser()
        slow = asyncio.ensure_future(
            env.start_authorize(ua, client, resource=MCP, scope="mcp:tools")
        )
        while not docs.requests:  # noqa: ASYNC110 - the fetch has started (a thread appends)
            await asyncio.sleep(0.01)
        other = asyncio.ensure_future(env.token(machine, {"grant_type": "client_credentials"}))
        done, _ = await asyncio.wait({slow, other}, return_when=asyncio.FIRST_COMPLETED)
        assert other in done
        assert slow not in done
        assert (await other).status_code == 200
        assert (await slow).response.status_code in (302, 303)


async def test_a_slow_document_at_the_token_endpoint_holds_no_database_connection(
    sqlite_url: str, clock: FakeClock, docs: DocumentServer
) -> None:
    """The same at the token endpoint: whoever posts there names the client, and so the
    document's server; the client is resolved before the request's transaction."""
    async with loopback_server(sqlite_url, clock) as env:
        machine = await env.client(grant_types=["client_credentials"], apis=[MCP])
        url = docs.url("/slow-token.json")
        docs.serve(
            "/slow-token.json",
            document(url),
            headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
            delay=3.0,
        )
        slow = asyncio.ensure_future(
            env.http.post(
                "/token",
                data={"grant_type": "refresh_token", "refresh_token": "x" * 40, "client_id": url},
            )
        )
        while not docs.requests:  # noqa: ASYNC110 - the fetch has started (a thread appends)
            await asyncio.sleep(0.01)
        other = asyncio.ensure_future(env.token(machine, {"grant_type": "client_credentials"}))
        done, _ = await asyncio.wait({slow, other}, return_when=asyncio.FIRST_COMPLETED)
        assert other in done
        assert slow not in done
        assert (await other).status_code == 200
        answer = await slow
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_grant"
        # resolved once, before the transaction: not fetched again inside it
        assert [path for path, _ in docs.requests] == ["/slow-token.json"]


async def _parallel_token_requests(env: ServerEnv, url: str, n: int) -> list[Any]:
    return list(
        await asyncio.gather(
            *(
                env.http.post(
                    "/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": "x" * 40,
                        "client_id": url,
                    },
                )
                for _ in range(n)
            )
        )
    )


async def test_parallel_requests_naming_one_document_fetch_it_once(
    sqlite_url: str, clock: FakeClock, docs: DocumentServer
) -> None:
    """M-05/M-08: whoever names a document chooses the server the fetch goes to; 20 parallel
    first requests for one document (marked no-store, so nothing keeps it) make one fetch, not
    20: the others wait for it and are answered from its client. A failing document, likewise:
    one fetch, then remembered."""
    async with loopback_server(sqlite_url, clock) as env:
        url = docs.url("/popular.json")
        docs.serve(
            "/popular.json",
            document(url),
            headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
            delay=0.5,
        )
        answers = await _parallel_token_requests(env, url, 20)
        # each is refused for its made-up refresh token: its client was resolved
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(400, "invalid_grant")}
        assert [path for path, _ in docs.requests] == ["/popular.json"]

        broken = docs.url("/broken-popular.json")
        docs.serve("/broken-popular.json", b"not json", delay=0.5)
        answers = await _parallel_token_requests(env, broken, 20)
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(401, "invalid_client")}
        assert [path for path, _ in docs.requests] == ["/popular.json", "/broken-popular.json"]


async def test_a_request_that_ends_during_the_shared_fetch_leaves_the_others_served(
    sqlite_url: str, clock: FakeClock, docs: DocumentServer
) -> None:
    """The request whose fetch the others wait for goes away (its client disconnected): the
    waiters do not hang or fail with it; one of them fetches the document in turn."""
    async with loopback_server(sqlite_url, clock) as env:
        url = docs.url("/leaving.json")
        docs.serve(
            "/leaving.json",
            document(url),
            headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
            delay=0.5,
        )
        first = asyncio.ensure_future(_parallel_token_requests(env, url, 1))
        while not docs.requests:  # noqa: ASYNC110 - the fetch has started (a thread appends)
            await asyncio.sleep(0.01)
        others = asyncio.ensure_future(_parallel_token_requests(env, url, 5))
        await asyncio.sleep(0.05)  # the others are waiting for the first one's fetch
        first.cancel()
        answers = await asyncio.wait_for(others, 10)
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(400, "invalid_grant")}
        assert [path for path, _ in docs.requests] == ["/leaving.json", "/leaving.json"]
