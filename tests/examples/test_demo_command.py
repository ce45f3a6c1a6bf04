"""``tokensmith demo`` as a person runs it: a subprocess in an empty folder, a sign-in through the
CloudDocs web app over HTTP (the login and consent forms, as a browser posts them), a document
written and listed through the API, Ctrl-C, and a second run on the same folder."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.examples.demo_process import (
    Demo,
    check_printed_urls_are_pages,
    checkout_env,
    free_base_port,
)
from tests.server.harness import hidden_fields
from tests.support.refusals import refusal
from tests.support.settings import FAST_HASH
from tokensmith.demo.seed import DemoDataError, DemoUrls, seed
from tokensmith.demo.servers import demo_settings


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    folder = tmp_path / "demo"
    assert not folder.exists()
    running = Demo(folder, free_base_port(), tmp_path)
    try:
        yield running
    finally:
        running.kill()


def sign_in(
    http: httpx.Client, url: str, *, issuer: str, username: str, password: str
) -> httpx.Response:
    """Follow redirects from ``url`` like a browser, filling tokensmith's login and consent
    forms; returns the first page that is not on the authorization server."""
    response = http.get(url)
    for _ in range(15):
        if response.status_code in (302, 303):
            response = http.get(urljoin(str(response.url), response.headers["location"]))
            continue
        on_issuer = str(response.url).startswith(issuer + "/")
        if response.status_code != 200 or not on_issuer:
            return response
        fields = hidden_fields(response.text)
        if response.url.path == "/login":
            fields.update(username=username, password=password)
        elif response.url.path == "/consent":
            fields["decision"] = "allow"
        else:
            return response
        response = http.post(str(response.url.copy_with(query=None)), data=fields)
    raise AssertionError("the sign-in did not finish")


def demo_password(demo: Demo) -> str:
    data = json.loads((demo.folder / "demo.json").read_text())
    assert data["username"] == "demo"
    return str(data["password"])


@pytest.mark.slow
def test_demo_starts_signs_in_stops_and_reuses_its_data(demo: Demo) -> None:
    demo.start()
    password = demo_password(demo)
    banner = demo.output()
    assert f"demo / {password}" in banner
    for url in (demo.issuer, demo.web, demo.api, demo.spa):
        assert url in banner
    assert "Open first:" in banner
    assert (demo.folder / "demo.json").stat().st_mode & 0o777 == 0o600

    with httpx.Client(follow_redirects=False, timeout=30.0) as http:
        assert http.get(f"{demo.issuer}/.well-known/openid-configuration").status_code == 200
        assert http.get(f"{demo.spa}/config.json").json()["issuer"] == demo.issuer
        home = sign_in(
            http,
            f"{demo.web}/auth/tokensmith/login?next=/",
            issuer=demo.issuer,
            username="demo",
            password=password,
        )
        assert home.status_code == 200, home.text[:500]
        assert str(home.url) == f"{demo.web}/"
        assert "Your documents" in home.text
        assert "Demo User" in home.text
        csrf = hidden_fields(home.text)["csrf_token"]
        created = http.post(
            f"{demo.web}/documents",
            data={"csrf_token": csrf, "title": "Demo plan", "body": "Ship it"},
        )
        assert created.status_code == 303, created.text[:500]
        listing = http.get(f"{demo.web}/")
        assert "Demo plan" in listing.text

    assert demo.stop(signal.SIGINT) == 0
    assert "CloudDocs demo stopped." in demo.output()

    demo.start()  # the same folder: same user, password and documents
    assert demo_password(demo) == password
    assert f"demo / {password}" in demo.output()
    with httpx.Client(follow_redirects=False, timeout=30.0) as http:
        home = sign_in(
            http,
            f"{demo.web}/auth/tokensmith/login?next=/",
            issuer=demo.issuer,
            username="demo",
            password=password,
        )
        assert "Demo plan" in home.text
    assert demo.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_every_address_the_demo_prints_opens_a_page(demo: Demo) -> None:
    """A newcomer opens what the banner prints: each address is a page meant for people (it once
    printed the issuer's and the API's bare origins, which answered ``{"detail":"Not Found"}``).
    The two origins that are not printed as such still answer a page that says where to go."""
    demo.start()
    with httpx.Client(follow_redirects=False, timeout=30.0) as http:
        urls = check_printed_urls_are_pages(demo, http)
        assert f"{demo.web}/" in urls
        assert f"{demo.issuer}/" in urls

        issuer_home = http.get(f"{demo.issuer}/")
        assert "default-src 'none'" in issuer_home.headers["content-security-policy"]
        for href in ("/.well-known/openid-configuration", "/jwks.json", "/account"):
            assert f'href="{demo.issuer}{href}"' in issuer_home.text
        for origin in (demo.web, demo.spa):
            assert f'href="{origin}/"' in issuer_home.text
        assert http.get(f"{demo.issuer}/.well-known/openid-configuration").status_code == 200
        assert http.get(f"{demo.issuer}/jwks.json").json()["keys"]

        api_home = http.get(f"{demo.api}/")
        assert api_home.status_code == 200
        assert api_home.headers["content-type"].startswith("text/html")
        assert "<title>CloudDocs API</title>" in api_home.text
        assert 'href="/docs"' in api_home.text
        assert "default-src 'none'" in api_home.headers["content-security-policy"]

        # the MCP server (the mcp extra is in dev): its page is printed, its endpoint is an
        # RFC 9728 protected resource whose tokens come from the demo's issuer
        assert f"{demo.mcp}/" in urls
        assert f'href="{demo.mcp}/"' in issuer_home.text
        metadata_url = f"{demo.mcp}/.well-known/oauth-protected-resource/mcp"
        assert http.get(metadata_url).json()["authorization_servers"] == [demo.issuer]
        refused = http.post(f"{demo.mcp}/mcp", json={})
        assert refused.status_code == 401
        assert f'resource_metadata="{metadata_url}"' in refused.headers["www-authenticate"]

        # every server has an icon where browsers ask for one (issue 15, trap 10): no 404s
        for origin in (demo.issuer, demo.api, demo.web, demo.spa, demo.mcp):
            icon = http.get(f"{origin}/favicon.ico")
            assert icon.status_code == 200, (origin, icon.status_code)
            assert icon.headers["content-type"] == "image/svg+xml", origin
            assert icon.content.startswith(b"<svg "), origin
        assert 'rel="icon" href="/favicon.ico"' in http.get(f"{demo.web}/").text
        assert 'rel="icon" href="/favicon.ico"' in http.get(f"{demo.spa}/").text
    assert demo.stop(signal.SIGINT) == 0


@pytest.mark.slow
async def test_demo_mcp_server_takes_the_tokens_the_demo_issuer_issues_for_it(demo: Demo) -> None:
    """The real authorization server and the MCP server together: a token requested with
    ``resource=<MCP URL>`` and ``mcp:tools`` works through the MCP SDK's client; the worker's
    token (issued for the CloudDocs API) is refused: the MCP server takes no other API's token."""
    pytest.importorskip("mcp")
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from tokensmith.admin import Admin

    demo.start()
    mcp_url = f"{demo.mcp}/mcp"
    async with Admin(demo_settings(demo.folder, demo.issuer)) as admin:
        agent = await admin.create_client(
            name="MCP agent",
            client_type="confidential",
            grant_types=["client_credentials"],
            scopes=["mcp:tools"],
            api=mcp_url,
        )
    assert agent.client_secret is not None
    state = json.loads((demo.folder / "demo.json").read_text())
    async with httpx.AsyncClient(timeout=10.0) as http:

        async def token(client_id: str, secret: str, scope: str, resource: str) -> str:
            response = await http.post(
                f"{demo.issuer}/token",
                data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
                auth=(client_id, secret),
            )
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

        mcp_token = await token(agent.client.client_id, agent.client_secret, "mcp:tools", mcp_url)
        worker = await token(
            state["worker_client_id"], state["worker_client_secret"], "docs:admin", demo.api
        )
        refused = await http.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {worker}"},
        )
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]

    headers = {"Authorization": f"Bearer {mcp_token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as mcp_http,
        streamable_http_client(mcp_url, http_client=mcp_http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("whoami", {})
    assert result.structured_content == {
        "subject": agent.client.client_id,
        "client_id": agent.client.client_id,
        "scopes": ["mcp:tools"],
    }
    assert demo.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_the_demos_servers_refuse_a_head_over_the_limits_as_serve_does(demo: Demo) -> None:
    """Every server of the demo runs uvicorn as ``tokensmith serve`` does: more header fields
    than ``max_header_fields`` (100) get 431 with the headers of every answer, and the
    connection closed (the demo ran plain uvicorn, which took any number)."""
    demo.start()
    fields = "".join(f"X-F{i}: v\r\n" for i in range(100))
    head = f"GET / HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n".encode("ascii")
    for name, origin in {**demo.origins(), "mcp": demo.mcp}.items():
        port = urlsplit(origin).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=15.0) as sock:
            sock.sendall(head)
            output = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                output += chunk
        try:
            refusal(output, 431)
        except AssertionError as exc:
            raise AssertionError(f"the demo's {name} server: {exc}") from exc
    assert demo.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_demo_on_a_port_in_use_says_so(demo: Demo) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", demo.base + 2))
        busy.listen()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from tokensmith.cli import main; main()",
                "demo",
                "--dir",
                str(demo.folder),
                "--port",
                str(demo.base),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=checkout_env(),
            check=False,
        )
    assert result.returncode == 1
    assert f"port {demo.base + 2}" in result.stderr
    assert "--port" in result.stderr


async def test_a_demo_folder_belongs_to_its_ports_and_version(tmp_path: Path) -> None:
    urls = DemoUrls.from_base(18000)
    settings = demo_settings(tmp_path, urls.issuer, **FAST_HASH)
    first = await seed(settings, tmp_path, urls=urls)
    assert await seed(settings, tmp_path, urls=urls) == first  # reused, nothing created
    with pytest.raises(DemoDataError, match="same --port"):
        await seed(settings, tmp_path, urls=DemoUrls.from_base(19000))
    state = tmp_path / "demo.json"
    old = json.loads(state.read_text())
    del old["version"]
    state.write_text(json.dumps(old))
    with pytest.raises(DemoDataError, match="another version"):
        await seed(settings, tmp_path, urls=urls)
