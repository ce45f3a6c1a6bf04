"""One attempt at the password login page, as a browser makes it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.harness import ServerEnv, hidden_fields


async def attempt(
    env: ServerEnv, ua: httpx.AsyncClient, client: Any, username: str, password: str
) -> httpx.Response:
    flow = await env.start_authorize(ua, client)
    page = await ua.get(flow.location)
    fields = hidden_fields(page.text)
    fields.update(username=username, password=password)
    return await ua.post(env.settings.login_path, data=fields)
