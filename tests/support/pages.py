"""The login and consent pages as a browser sees them: open them, submit the login form, read the
cookies set, and the headers and same-origin rules every page must keep."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from tests.server.harness import (
    PASSWORD,
    ServerEnv,
    hidden_fields,
)

SESSION_COOKIE = "__Host-tokensmith_as_session"
BROWSER_COOKIE = "__Host-tokensmith_as_browser"


async def open_login(env: ServerEnv, ua: httpx.AsyncClient, client: object, **overrides: str):
    """Start an authorization and open the login page: (page, form fields, authorize params)."""
    flow = await env.start_authorize(ua, client, **overrides)  # type: ignore[arg-type]
    assert flow.response.status_code == 302, flow.response.text
    assert urlsplit(flow.location).path == "/login"
    page = await ua.get(flow.location)
    assert page.status_code == 200
    return page, hidden_fields(page.text), flow.params


async def submit_login(
    ua: httpx.AsyncClient,
    fields: dict[str, str],
    *,
    username: str = "alice",
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await ua.post(
        "/login", data={**fields, "username": username, "password": password}, headers=headers
    )


async def open_consent(
    env: ServerEnv, ua: httpx.AsyncClient, client: object, **overrides: str
) -> tuple[httpx.Response, dict[str, str], dict[str, str]]:
    """Log in and stop at the consent page."""
    _, fields, params = await open_login(env, ua, client, **overrides)
    response = await submit_login(ua, fields)
    assert response.status_code == 303, response.text
    assert urlsplit(response.headers["location"]).path == "/consent"
    page = await ua.get(response.headers["location"])
    assert page.status_code == 200
    return page, hidden_fields(page.text), params


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Raw ``Set-Cookie`` header values by cookie name."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        out[name] = header
    return out


def assert_page_headers(response: httpx.Response, *, script: bool = False) -> None:
    """``script``: the page runs the passkey script (``script-src 'self'``, nothing else)."""
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    if script:
        assert "script-src 'self';" in csp + ";"
    else:
        assert "script-src" not in csp or "'none'" in csp
    assert "default-src 'none'" in csp
    assert "no-store" in headers["cache-control"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/html")


def assert_same_origin_resources(html: str, *, script: bool = False) -> None:
    """BCP-29: every src/href/action of an authorization page is on the server's own origin;
    ``script``: its one script is the passkey script, no inline script."""
    for attr, value in re.findall(r'(src|href|action)="([^"]*)"', html):
        assert value.startswith("/"), (attr, value)
        assert not value.startswith("//"), (attr, value)
    scripts = re.findall(r"<script[^>]*>", html.lower())
    assert scripts == (['<script src="/static/passkeys.js" defer>'] if script else [])
