"""The account page's password forms, driven as a browser would (shared by the account-security
and login-pool tests)."""

from __future__ import annotations

import httpx

from tests.server.harness import ServerEnv, hidden_fields


async def signed_in(env: ServerEnv, client: object) -> httpx.AsyncClient:
    ua = env.browser()
    flow = await env.authorize(ua, client)  # type: ignore[arg-type]
    assert flow.response.status_code == 303
    return ua


async def csrf(ua: httpx.AsyncClient) -> str:
    page = await ua.get("/account")
    assert page.status_code == 200
    return hidden_fields(page.text)["csrf_token"]


async def change(ua: httpx.AsyncClient, current: str, new: str, **extra: str) -> httpx.Response:
    form = {
        "csrf_token": await csrf(ua),
        "current_password": current,
        "new_password": new,
        "new_password_again": new,
    }
    form.update(extra)
    return await ua.post("/account/password", data=form)
