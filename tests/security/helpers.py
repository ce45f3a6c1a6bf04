"""Assertion helpers of the security checklist (§0)."""

from __future__ import annotations

import re

import httpx

from tests.server.harness import PASSWORD, ServerEnv, hidden_fields


def assert_no_redirect_to(response: httpx.Response, target: str) -> None:
    """Not a 3xx to ``target``, and no meta refresh, script location or auto-submitting form
    pointing at it in the body."""
    location = response.headers.get("location", "")
    if 300 <= response.status_code < 400:
        assert not location.startswith(target), location
        before_query = location.split("?")[0].lower()
        assert "evil" not in before_query, location
        assert not before_query.startswith(("//", "/\\")), location
    body = response.text.lower()
    assert "http-equiv" not in body
    assert "location.href" not in body
    assert "location=" not in body
    assert target.lower() not in body or "<form" not in body


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    csp = response.headers["content-security-policy"]
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


URL_ATTRS = re.compile(r'\b(?:src|href|action|formaction)\s*=\s*"([^"]*)"', re.I)


def urls_in(html: str) -> list[str]:
    return URL_ATTRS.findall(html)


async def login_page(env: ServerEnv, ua: httpx.AsyncClient, client: object) -> httpx.Response:
    flow = await env.start_authorize(ua, client)  # type: ignore[arg-type]
    assert flow.response.status_code == 302, flow.response.text
    page = await ua.get(flow.location)
    assert page.status_code == 200
    return page


async def consent_page(env: ServerEnv, ua: httpx.AsyncClient, client: object) -> httpx.Response:
    page = await login_page(env, ua, client)
    fields = hidden_fields(page.text)
    response = await ua.post("/login", data={**fields, "username": "alice", "password": PASSWORD})
    assert response.status_code == 303, response.text
    consent = await ua.get(response.headers["location"])
    assert consent.status_code == 200, consent.text[:300]
    assert 'name="decision"' in consent.text, consent.text[:300]
    return consent
