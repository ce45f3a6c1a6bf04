"""Clients and grants that many server and security tests start from, registered through the
in-process harness (``tests/server/harness.py``)."""

from __future__ import annotations

import httpx

from tests.server.harness import Flow, ServerEnv
from tokensmith.core.registration import NewClient


async def machine(env: ServerEnv, **kwargs: object) -> NewClient:
    """A confidential client of the client-credentials grant (RFC 6749 §4.4)."""
    defaults: dict[str, object] = {
        "name": "CloudDocs worker",
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "scopes": ["docs:read"],
    }
    defaults.update(kwargs)
    return await env.client(**defaults)


async def resource_server(env: ServerEnv, **kwargs: object) -> NewClient:
    """A resource server's client that may introspect (RFC 7662) every client's tokens."""
    defaults: dict[str, object] = {
        "name": "CloudDocs API",
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "scopes": ["docs:read"],
        "can_introspect": True,
    }
    defaults.update(kwargs)
    return await env.client(**defaults)


async def start(env: ServerEnv, **client_kwargs: object) -> tuple[NewClient, dict[str, object]]:
    """A client of the code and refresh-token grants, and the token response of alice's first
    code exchange (she is created if missing)."""
    kwargs: dict[str, object] = {"grant_types": ["authorization_code", "refresh_token"]}
    kwargs.update(client_kwargs)
    client = await env.client(**kwargs)
    if not await env.admin.find_user("alice"):
        await env.user()
    flow = await env.authorize(env.browser(), client, scope="docs:read docs:write")
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    return client, response.json()


async def refresh(env: ServerEnv, client: NewClient, token: str, **extra: str) -> httpx.Response:
    """A refresh-token request (RFC 6749 §6) by ``client``."""
    return await env.token(client, {"grant_type": "refresh_token", "refresh_token": token, **extra})


async def code_refused(env: ServerEnv, client: NewClient, flow: Flow) -> bool:
    """Whether redeeming the code of ``flow`` is refused with ``invalid_grant``."""
    late = await env.redeem(client, flow.code, flow.verifier)
    return late.status_code == 400 and late.json()["error"] == "invalid_grant"
