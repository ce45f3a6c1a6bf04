"""Upstream tokens: encrypted at rest, sent only to the provider's API, refreshed once on 401."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.client.conftest import APP, MakeEnv, github_provider, login, oidc_provider
from tests.client.fake_github import FakeGitHub
from tests.client.fake_oidc import FakeOIDC
from tokensmith.client import ReloginRequired


async def test_refresh_on_401_then_relogin(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    fake_github.expiring_tokens = True
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    await login(browser, "github")

    ok = await browser.get(f"{APP}/me/upstream")
    assert ok.status_code == 200
    assert ok.json()["login"] == "alice"
    assert fake_github.refresh_requests == 0

    fake_github.revoke_access_tokens()  # the provider now answers 401 to the stored token
    ok = await browser.get(f"{APP}/me/upstream")
    assert ok.status_code == 200
    assert ok.json()["login"] == "alice"
    assert fake_github.refresh_requests == 1

    ok = await browser.get(f"{APP}/me/upstream")  # the refreshed token was stored
    assert ok.status_code == 200
    assert fake_github.refresh_requests == 1

    fake_github.revoke_access_tokens()
    fake_github.revoke_refresh_tokens()
    gone = await browser.get(f"{APP}/me/upstream")
    assert gone.status_code == 401
    assert gone.json() == {"relogin": True}
    assert fake_github.refresh_requests == 2


async def test_401_without_refresh_token_needs_relogin(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    await login(browser, "github")
    fake_github.revoke_access_tokens()
    gone = await browser.get(f"{APP}/me/upstream")
    assert gone.status_code == 401
    assert fake_github.refresh_requests == 0


async def test_tokens_encrypted_at_rest(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    fake_github.expiring_tokens = True
    env = await make_env({"github": github_provider(fake_github)})
    await login(env.browser(), "github")
    (access_token,) = fake_github.tokens
    (refresh_token,) = fake_github.refresh
    async with env.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM ts_client_upstream_tokens"))).all()
    assert len(rows) == 1
    dump = repr(rows)
    assert access_token not in dump
    assert refresh_token not in dump
    user_id, provider, _sealed = rows[0]
    tokens = await env.auth.vault.load(user_id, provider)
    assert tokens is not None
    assert tokens.access_token == access_token
    # sealed for this user and provider: under another user id it does not open
    await env.store.save_upstream_tokens("someone-else", provider, rows[0][2])
    assert await env.auth.vault.load("someone-else", provider) is None


async def test_token_only_in_header_and_only_to_the_provider_api(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    """BCP-C13."""
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    await login(browser, "github")
    user_id = (await browser.get(f"{APP}/me")).json()["user_id"]
    api = env.auth.api(user_id, "github")
    with pytest.raises(ValueError, match="not an API URL"):
        await api.get("https://evil.example/user")
    with pytest.raises(ValueError, match="not an API URL"):
        await api.get(fake_github.url + ".evil.example/user")
    fake_github.api_authorizations.clear()
    response = await api.get("/user", params={"x": "1"})
    assert response.status_code == 200
    assert "gho_" not in str(response.request.url)
    assert fake_github.api_authorizations[0].startswith("Bearer gho_")


async def test_unknown_user_needs_login(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    with pytest.raises(ReloginRequired):
        await env.auth.api("nobody", "github").get("/user")


async def test_oidc_userinfo_through_api(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    await login(browser, "op")
    user_id = (await browser.get(f"{APP}/me")).json()["user_id"]
    response = await env.auth.api(user_id, "op").get(f"{fake_oidc.url}/userinfo")
    assert response.json()["sub"] == fake_oidc.subject


async def test_concurrent_calls_refresh_once(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    """GitHub's refresh tokens are single-use: two requests hitting a 401 at the same time must
    not both refresh (the second would be refused and force a re-login)."""
    fake_github.expiring_tokens = True
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    await login(browser, "github")
    fake_github.revoke_access_tokens()
    responses = await asyncio.gather(*(browser.get(f"{APP}/me/upstream") for _ in range(4)))
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    assert fake_github.refresh_requests == 1
