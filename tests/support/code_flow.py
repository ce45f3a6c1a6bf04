"""An authorization code ready to redeem: a client, a user and a finished authorization."""

from __future__ import annotations

from typing import Any

from tests.server.harness import Flow, ServerEnv
from tokensmith.core.registration import NewClient


async def code_flow(env: ServerEnv, client: NewClient | None = None, **overrides: str) -> Flow:
    client = client or await env.client()
    if not await env.admin.find_user("alice"):
        await env.user()
    flow = await env.authorize(env.browser(), client, **overrides)
    assert "code" in flow.result, flow.location
    return flow


async def ready(env: ServerEnv, **client_kwargs: Any) -> tuple[NewClient, Flow]:
    client = await env.client(**client_kwargs)
    return client, await code_flow(env, client)
