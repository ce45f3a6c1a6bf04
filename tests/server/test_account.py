"""The account page (O21-42, W-42): a user sees the applications they consented to and removes
one, which withdraws the consent and revokes its tokens at once."""

from __future__ import annotations

from tests.server.harness import ServerEnv, hidden_fields
from tests.support.clients import refresh, start


async def test_account_lists_and_removes_connected_applications(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    ua = env.browser()
    flow = await env.authorize(ua, client)  # signs this browser in
    assert flow.response.status_code == 303
    page = await ua.get("/account")
    assert page.status_code == 200
    assert "CloudDocs Web" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    fields = hidden_fields(page.text)
    removed = await ua.post("/account", data=fields)
    assert removed.status_code == 303
    assert "CloudDocs Web" not in (await ua.get("/account")).text
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )
    # the next authorization asks for consent again
    again = await env.start_authorize(ua, client)
    assert again.location.startswith(env.settings.consent_path)


async def test_account_needs_a_session_and_a_csrf_token(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    assert (await env.browser().get("/account")).status_code == 401
    ua = env.browser()
    await env.authorize(ua, client)
    fields = hidden_fields((await ua.get("/account")).text)
    forged = {"client_id": fields["client_id"]}
    assert (await ua.post("/account", data=forged)).status_code == 403
    cross = await ua.post("/account", data=fields, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 200
