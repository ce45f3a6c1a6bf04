"""The demo authorization server's front page.

A tokensmith issuer has no page at ``/``: people reach it through a client's sign-in. The demo
prints the issuer's address next to the apps', though, and a newcomer who opens it should land on
a page that says what it is and where to go, not on ``{"detail": "Not Found"}``. This page is
added to the demo's issuer only (:func:`tokensmith.demo.servers.build_apps`); it is served with
the authorization server's own stylesheet and security headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from fastapi.responses import HTMLResponse

from tokensmith.demo.seed import DemoData
from tokensmith.settings import Settings

__all__ = ["issuer_home"]


def issuer_home(data: DemoData, settings: Settings) -> Callable[[], Awaitable[HTMLResponse]]:
    """A ``GET /`` endpoint: what this server is, the demo's apps, its metadata and JWKS."""

    def link(href: str, text: str) -> str:
        return f'<a href="{escape(href)}">{escape(text)}</a>'

    issuer = data.issuer
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(settings.product_name)} authorization server · CloudDocs demo</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="/static/tokensmith.css">
</head>
<body>
<main class="card" id="main">
<h1>{escape(settings.product_name)} authorization server</h1>
<p class="lead">The CloudDocs demo's OAuth 2.1 and OpenID Connect server ({escape(issuer)}).</p>
<p>Nobody starts here: open one of the CloudDocs apps and sign in. They send you to this
server's sign-in and consent pages and get tokens from it.</p>
<ul class="apps">
<li>{link(data.web_url + "/", "CloudDocs web app")}: server-rendered, open this first</li>
<li>{link(data.spa_url + "/", "CloudDocs SPA")}: a single-page app</li>
<li>{link(data.api + "/docs", "CloudDocs API")}: Swagger UI, sign in with PKCE</li>
<li>{link(data.mcp_url.removesuffix("/mcp") + "/", "Demo MCP server")}: tools for AI agents,
an RFC 9728 protected resource (runs when the <code>mcp</code> extra is installed)</li>
</ul>
<p>For developers:</p>
<ul class="apps">
<li>{link(issuer + "/.well-known/openid-configuration", "OpenID Connect discovery")}
(the endpoints, RFC 8414 metadata)</li>
<li>{link(issuer + settings.jwks_path, "JWKS")}: the public keys that verify its tokens</li>
<li>{link(issuer + settings.account_path, "Your account")}: the apps you allowed and
two-step verification (after signing in)</li>
</ul>
<p>Self-service accounts:</p>
<ul class="apps">
<li>{link(issuer + settings.signup_path, "Create an account")}: the link to finish arrives
in the outbox</li>
<li>{link(issuer + settings.forgot_password_path, "Forgotten password")}: a reset link, in the
outbox too</li>
<li>{link(issuer + settings.outbox_path, "Development outbox")}: every message this server
"sent" (the demo sends no real e-mail)</li>
</ul>
<p class="fine">Sign in as <code>{escape(data.username)}</code>; the password is in the
demo's output and in demo.json.</p>
</main>
</body>
</html>
"""

    async def home() -> HTMLResponse:
        return HTMLResponse(html)

    return home
