"""An MCP server protected by tokensmith: the official MCP Python SDK behind tokensmith.resource.

The MCP server is an OAuth 2.0 resource server (MCP authorization, 2025-06-18 and later): it
publishes RFC 9728 protected-resource metadata, answers a request without a valid token with
401 ``WWW-Authenticate: Bearer resource_metadata="..."``, accepts only tokens whose audience is
its own URL (RFC 8707 / RFC 9068 ``aud``), and a token without the tools' scope gets 403
``insufficient_scope`` naming it (step-up).

Built from the public API only: :class:`~tokensmith.resource.TokenValidator` (audience = the MCP
endpoint's URL), :class:`~tokensmith.resource.ProtectedResource` with
:func:`~tokensmith.resource.protected_resource_router`, and :meth:`ResourceServer.protect`
wrapping the SDK's Streamable HTTP app, which sees the caller as ``request.state.principal``.
Why not the SDK's own ``TokenVerifier``/``AuthSettings``: see docs/mcp.md.

Needs the ``mcp`` extra (``pip install 'tokensmith[mcp]'``); :func:`mcp_available` says whether
it is installed. ``examples/mcp/server.py`` runs it; ``tokensmith demo`` starts it beside
CloudDocs.

No ``from __future__ import annotations`` here: the SDK reads the tool's annotations, and
``Context`` is imported inside :func:`create_mcp_server` (the module imports without ``mcp``).
"""

import contextlib
import importlib.metadata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tokensmith.resource import (
    Principal,
    ProtectedResource,
    ResourceServer,
    TokenValidator,
    protected_resource_router,
)

__all__ = [
    "MCP_INSTALL_HINT",
    "TOOLS_SCOPE",
    "TOOLS_SCOPE_DESCRIPTION",
    "McpServerConfig",
    "create_mcp_server",
    "mcp_available",
]

TOOLS_SCOPE = "mcp:tools"
TOOLS_SCOPE_DESCRIPTION = "Use the MCP tools"
MCP_INSTALL_HINT = "pip install 'tokensmith[mcp]'"

_PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

FAVICON = (Path(__file__).parent / "clouddocs" / "static" / "favicon.svg").read_bytes()


def mcp_available() -> bool:
    """True when the official MCP SDK (the ``mcp`` extra), version 2 or later, is installed.

    Checked from the installed distribution's version, without importing the SDK: an ``mcp``
    1.x (no ``MCPServer``) counts as missing, so the demo starts without it and says what to
    install instead of failing.
    """
    try:
        version = importlib.metadata.version("mcp")
    except importlib.metadata.PackageNotFoundError:
        return False
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 2


@dataclass(frozen=True, kw_only=True)
class McpServerConfig:
    """``issuer``: the tokensmith authorization server. ``url``: the MCP endpoint's URL, e.g.
    ``https://mcp.example.com/mcp``: the resource identifier, the tokens' audience, and the
    ``resource`` clients send (RFC 8707). ``host``: the interface served on, for the SDK's
    DNS-rebinding protection (on loopback it only accepts loopback ``Host`` headers)."""

    issuer: str
    url: str
    name: str = "tokensmith demo MCP server"
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if urlsplit(self.url).path in ("", "/"):
            raise ValueError(f"the MCP endpoint {self.url!r} needs a path, e.g. /mcp")

    @property
    def endpoint_path(self) -> str:
        return urlsplit(self.url).path


def _caller(ctx: Any) -> Principal:
    """The :class:`Principal` that :meth:`ResourceServer.protect` put on the HTTP request."""
    request = ctx.request_context.request
    principal = getattr(getattr(request, "state", None), "principal", None)
    if not isinstance(principal, Principal):
        # unreachable behind protect(); refuse rather than answer anonymously
        raise PermissionError("no authenticated caller")
    return principal


def _home(config: McpServerConfig, resource: ProtectedResource) -> HTMLResponse:
    """``GET /``: what this server is and how to reach it, for a person who opens it."""
    url, metadata = escape(config.url), escape(resource.metadata_url)
    issuer = escape(config.issuer)
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>tokensmith demo MCP server</title><link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
line-height:1.5}}code{{background:#f3f3f3;padding:0 .2em}}</style></head>
<body>
<h1>tokensmith demo MCP server</h1>
<p>A <a href="https://modelcontextprotocol.io/">Model Context Protocol</a> server (the official
Python SDK, Streamable HTTP) protected by <code>tokensmith.resource</code>.</p>
<ul>
<li>MCP endpoint: <code>{url}</code> (POST, with <code>Authorization: Bearer</code>)</li>
<li>Tokens from: <a href="{issuer}/">{issuer}</a>, issued for the resource
<code>{url}</code> with the scope <code>{TOOLS_SCOPE}</code> ({TOOLS_SCOPE_DESCRIPTION})</li>
<li>Protected resource metadata (RFC 9728): <a href="{metadata}">{metadata}</a></li>
<li>Tools: <code>whoami</code> (the token's subject and scopes)</li>
</ul>
<p>Without a token the endpoint answers <code>401</code> with
<code>WWW-Authenticate: Bearer resource_metadata="…"</code>: an MCP client follows it to the
metadata, then to the authorization server, and signs in.</p>
</body></html>
"""
    headers = {"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(html, headers=headers)


def create_mcp_server(config: McpServerConfig, *, http: httpx.AsyncClient | None = None) -> ASGIApp:
    """The MCP server's ASGI app: ``/`` (a page), the RFC 9728 metadata, the MCP endpoint.

    ``http`` fetches the issuer's metadata and keys; by default a client owned by the app.
    """
    from mcp.server.mcpserver import Context, MCPServer

    resource = ProtectedResource(
        resource=config.url,
        authorization_servers=(config.issuer,),
        scopes_supported=(TOOLS_SCOPE,),
        resource_name=config.name,
    )
    own_http = http is None
    client = httpx.AsyncClient(timeout=10.0) if http is None else http
    validator = TokenValidator(http=client, issuer=config.issuer, audience=config.url)
    rs = ResourceServer(validator, realm="mcp", protected_resource=resource)

    server: MCPServer[Any] = MCPServer(name=config.name, log_level="WARNING")

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Who the access token speaks for: its subject, client and scopes."""
        principal = _caller(ctx)
        return {
            "subject": principal.subject,
            "client_id": principal.client_id,
            "scopes": sorted(principal.scopes),
        }

    # Stateless: each POST stands alone, so no MCP session outlives the token that opened it
    # and one caller cannot continue another caller's session by its id.
    mcp_app = server.streamable_http_app(
        streamable_http_path=config.endpoint_path,
        stateless_http=True,
        json_response=True,
        host=config.host,
    )
    guarded = rs.protect(mcp_app, TOOLS_SCOPE)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with server.session_manager.run():
                yield
        finally:
            if own_http:
                await client.aclose()

    pages = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    pages.include_router(protected_resource_router(resource))
    pages.add_api_route(
        "/", lambda: _home(config, resource), methods=["GET"], include_in_schema=False
    )

    async def favicon() -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    pages.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
    endpoint = config.endpoint_path

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] == endpoint:
            await guarded(scope, receive, send)
        else:
            await pages(scope, receive, send)

    return app
