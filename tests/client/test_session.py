"""The app session: rotation at login, logout (CSRF-protected), frontends, RP-initiated logout."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.client.conftest import (
    APP,
    SESSION_COOKIE,
    Env,
    MakeEnv,
    assert_error_page,
    assert_no_secret_in_locations,
    github_provider,
    login,
    oidc_provider,
    session_cookie,
)
from tests.client.fake_github import FakeGitHub
from tests.client.fake_oidc import FakeOIDC


def with_cookie(env: Env, value: str) -> httpx.AsyncClient:
    browser = env.browser()
    browser.cookies.set(SESSION_COOKIE, value, domain="app.test")
    return browser


async def test_session_id_rotated_at_login(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    """W-27/W-28: a planted cookie is not adopted; a second login replaces the first session."""
    env = await make_env({"github": github_provider(fake_github)})
    browser = with_cookie(env, "planted-by-attacker")
    first = await login(browser, "github")
    assert first.callback is not None
    cookie_a = session_cookie(first.callback)
    assert cookie_a is not None
    assert cookie_a != "planted-by-attacker"
    assert (await with_cookie(env, "planted-by-attacker").get(f"{APP}/me")).status_code == 401

    second = await login(browser, "github")
    assert second.callback is not None
    cookie_b = session_cookie(second.callback)
    assert cookie_b is not None
    assert cookie_b != cookie_a
    assert (await with_cookie(env, cookie_a).get(f"{APP}/me")).status_code == 401
    assert (await with_cookie(env, cookie_b).get(f"{APP}/me")).status_code == 200
    assert await env.count("ts_client_sessions") == 1


async def test_session_stored_as_digest(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    from sqlalchemy import text

    env = await make_env({"github": github_provider(fake_github)})
    flow = await login(env.browser(), "github")
    assert flow.callback is not None
    cookie = session_cookie(flow.callback)
    assert cookie is not None
    async with env.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM ts_client_sessions"))).all()
    assert len(rows) == 1
    assert cookie not in repr(rows)


async def test_logout_needs_csrf_and_invalidates_server_side(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github")
    assert flow.callback is not None
    cookie = session_cookie(flow.callback)
    assert cookie is not None

    info = (await browser.get(f"{APP}/auth/session")).json()
    assert info["authenticated"] is True
    csrf = info["csrf_token"]

    refused = await browser.post(f"{APP}/auth/logout")
    assert_error_page(refused, 403, "CSRFError")
    refused = await browser.post(f"{APP}/auth/logout", data={"csrf_token": "x" * 43})
    assert_error_page(refused, 403, "CSRFError")
    cross_site = await browser.post(
        f"{APP}/auth/logout",
        data={"csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert_error_page(cross_site, 403, "CSRFError")
    assert (await browser.get(f"{APP}/me")).status_code == 200

    done = await browser.post(
        f"{APP}/auth/logout", data={"csrf_token": csrf}, headers={"Origin": APP}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{APP}/"
    assert any(
        h.startswith(SESSION_COOKIE + "=") and "Max-Age=0" in h
        for h in done.headers.get_list("set-cookie")
    )
    assert await env.count("ts_client_sessions") == 0
    # the old cookie, replayed from elsewhere, no longer works
    assert (await with_cookie(env, cookie).get(f"{APP}/me")).status_code == 401


async def test_logout_with_header_token(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    await login(browser, "github")
    csrf = (await browser.get(f"{APP}/auth/session")).json()["csrf_token"]
    done = await browser.post(f"{APP}/auth/logout", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303
    assert (await browser.get(f"{APP}/auth/session")).json() == {"authenticated": False}


async def test_oidc_logout_goes_to_end_session_endpoint(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    await login(browser, "op")
    csrf = (await browser.get(f"{APP}/auth/session")).json()["csrf_token"]
    done = await browser.post(f"{APP}/auth/logout", data={"csrf_token": csrf})
    assert done.status_code == 303
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake_oidc.url}/logout"
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == [f"{APP}/"]
    assert query["client_id"] == [fake_oidc.client_id]
    assert query["id_token_hint"][0].count(".") == 2
    assert (await browser.get(f"{APP}/me")).status_code == 401


async def test_separate_frontend_gets_a_redirect_without_secrets(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    env = await make_env(
        {"op": oidc_provider(fake_oidc)}, frontend_url="https://spa.test", post_login_path="/home"
    )
    browser = env.browser()
    flow = await login(browser, "op")
    assert flow.callback is not None
    assert flow.callback.headers["location"] == "https://spa.test/home"
    assert_no_secret_in_locations(flow)
    # the frontend then calls the backend with the cookie
    info = (await browser.get(f"{APP}/auth/session")).json()
    assert info["authenticated"] is True
    allowed = await browser.post(
        f"{APP}/auth/logout",
        data={"csrf_token": info["csrf_token"]},
        headers={"Origin": "https://spa.test"},
    )
    assert allowed.status_code == 303


async def test_http_app_uses_plain_cookie_names(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)}, base_url="http://app.test")
    start = await env.auth.login.start_login("github")
    tag = hashlib.sha256(b"http://app.test").hexdigest()[:8]
    assert start.cookie_name.startswith(f"tsc_{tag}_tx_")
    assert env.auth.config.session_cookie_name == f"tsc_{tag}_session"
    assert env.auth.config.secure is False
