"""examples/mcp/server.py as a person runs it, against a real issuer, called by the official MCP
Python SDK's client: the MCP server is an RFC 9728 protected resource that accepts only tokens
issued for itself with the tools' scope (MCP authorization, 2025-06-18 and later)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.testing import LocalIssuer
from tokensmith.testing.ports import reserve_port

pytest.importorskip("mcp", reason="the mcp extra (pip install 'tokensmith[mcp]')")

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "mcp" / "server.py"


class McpServer:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.url = f"{origin}/mcp"
        self.metadata_url = f"{origin}/.well-known/oauth-protected-resource/mcp"


@pytest.fixture(scope="module")
def mcp_issuer() -> Iterator[LocalIssuer]:
    """An issuer of this module's own: the session's is reset to a fresh key by every test that
    uses ``tokensmith_issuer``, which would change the key under the running MCP server."""
    with LocalIssuer().serve() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def mcp_server(mcp_issuer: LocalIssuer, tmp_path_factory: Any) -> Iterator[McpServer]:
    sock = reserve_port()
    port = sock.getsockname()[1]
    sock.close()
    log = tmp_path_factory.mktemp("mcp") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--issuer",
                mcp_issuer.url,
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    server = McpServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{server.origin}/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def initialize() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }


MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def post(server: McpServer, token: str | None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url, json=initialize(), headers=headers)


def test_metadata_names_the_issuer_and_the_tools_scope(
    mcp_server: McpServer, mcp_issuer: LocalIssuer
) -> None:
    for url in (
        mcp_server.metadata_url,
        f"{mcp_server.origin}/.well-known/oauth-protected-resource",
    ):
        response = httpx.get(url)
        assert response.status_code == 200, url
        assert response.json() == {
            "resource": mcp_server.url,
            "authorization_servers": [mcp_issuer.url],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
            "resource_name": "tokensmith demo MCP server",
        }
    page = httpx.get(f"{mcp_server.origin}/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>tokensmith demo MCP server</title>" in page.text
    assert mcp_server.metadata_url in page.text


def test_no_token_is_401_pointing_to_the_metadata(mcp_server: McpServer) -> None:
    response = post(mcp_server, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="mcp", scope="mcp:tools", resource_metadata="{mcp_server.metadata_url}"'
    )
    # a browser's GET of the endpoint gets the same answer, not the MCP transport
    assert httpx.get(mcp_server.url).status_code == 401


def test_token_for_another_audience_is_401(mcp_server: McpServer, mcp_issuer: LocalIssuer) -> None:
    """MCP: a server accepts only tokens issued for itself (no token passthrough)."""
    token = mcp_issuer.token(scopes=["mcp:tools"], audience="https://api.example.test")
    response = post(mcp_server, token)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{mcp_server.metadata_url}"' in challenge


def test_token_without_the_tools_scope_is_403_naming_it(
    mcp_server: McpServer, mcp_issuer: LocalIssuer
) -> None:
    token = mcp_issuer.token(scopes=["docs:read"], audience=mcp_server.url)
    response = post(mcp_server, token)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="mcp", error="insufficient_scope", scope="mcp:tools", '
        f'resource_metadata="{mcp_server.metadata_url}"'
    )


async def test_sdk_client_lists_tools_and_calls_whoami(
    mcp_server: McpServer, mcp_issuer: LocalIssuer
) -> None:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    token = mcp_issuer.token(
        sub="dana", scopes=["mcp:tools", "profile"], audience=mcp_server.url, client_id="agent"
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        streamable_http_client(mcp_server.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [tool.name for tool in tools.tools] == ["whoami"]
        result = await session.call_tool("whoami", {})
    assert not result.is_error
    assert result.structured_content == {
        "subject": "dana",
        "client_id": "agent",
        "scopes": ["mcp:tools", "profile"],
    }
