"""RP-Initiated Logout 1.0 (issue 4; W-94): exact post_logout_redirect_uri, confirmation
without a valid id_token_hint, the session ends server-side and the cookie is cleared."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from tests.server.harness import ServerEnv, hidden_fields, query_of
from tests.support.oidc import login, oidc_client

BYE = "https://rp.test/bye"


async def assert_logged_out(env: ServerEnv, ua, client) -> None:  # type: ignore[no-untyped-def]
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert flow.result["error"] == "login_required"


async def test_logout_with_hint_ends_the_session_and_redirects(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    body = await login(env, client, ua)
    query = urlencode(
        {"id_token_hint": body["id_token"], "post_logout_redirect_uri": BYE, "state": "s1"}
    )
    response = await ua.get(f"/logout?{query}")
    assert response.status_code == 302
    assert response.headers["location"].startswith(BYE + "?")
    assert query_of(response.headers["location"]) == {"state": "s1"}
    assert (
        "Max-Age=0" in response.headers["set-cookie"]
        or "expires=" in response.headers["set-cookie"].lower()
    )
    await assert_logged_out(env, ua, client)


async def test_old_session_cookie_is_dead_after_logout(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    body = await login(env, client, ua)
    saved = dict(ua.cookies.items())
    await ua.get("/logout?" + urlencode({"id_token_hint": body["id_token"]}))
    replay = env.browser()
    for name, value in saved.items():
        replay.cookies.set(name, value, domain="as.test")
    await assert_logged_out(env, replay, client)


async def test_unregistered_post_logout_redirect_uri_is_an_error_page(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    body = await login(env, client, ua)
    for uri in ["https://evil.example/bye", BYE + "/", BYE + "?x=1"]:
        query = urlencode({"id_token_hint": body["id_token"], "post_logout_redirect_uri": uri})
        response = await ua.get(f"/logout?{query}")
        assert response.status_code == 400
        assert "location" not in response.headers
    # nothing happened: still signed in
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert "code" in flow.result


async def test_logout_without_hint_asks_for_confirmation(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, client, ua)
    query = urlencode(
        {"client_id": client.client.client_id, "post_logout_redirect_uri": BYE, "state": "z"}
    )
    page = await ua.get(f"/logout?{query}")
    assert page.status_code == 200
    assert "Sign out?" in page.text
    # a cross-site request cannot log the user out: no token, or a foreign origin
    fields = hidden_fields(page.text)
    forged = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert (await ua.post("/logout", data=forged)).status_code == 403
    cross = await ua.post("/logout", data=fields, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert "code" in flow.result
    confirmed = await ua.post("/logout", data=fields)
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"{BYE}?state=z"
    await assert_logged_out(env, ua, client)


async def test_logout_with_a_forged_hint_is_refused(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, client, ua)
    response = await ua.get("/logout?" + urlencode({"id_token_hint": "a.b.c"}))
    assert response.status_code == 400
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert "code" in flow.result


async def test_logout_without_session_shows_the_signed_out_page(server_env: ServerEnv) -> None:
    env = server_env
    response = await env.browser().get("/logout")
    assert response.status_code == 200
    assert "signed out" in response.text
    assert urlsplit(str(response.url)).path == "/logout"
