"""Login with GitHub against the GitHub stand-in, over real HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

from tests.client.conftest import (
    APP,
    APP_COOKIE,
    SESSION_COOKIE,
    MakeEnv,
    assert_error_page,
    assert_no_secret_in_locations,
    github_provider,
    login,
    session_cookie,
)
from tests.client.fake_github import FakeGitHub
from tests.client.servers import dead_url, hanging_server
from tokensmith.client import GitHubProvider


async def test_github_login_with_verified_primary_email(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", next="/dashboard?tab=1")

    query = parse_qs(urlsplit(flow.start.headers["location"]).query)
    assert query["response_type"] == ["code"]  # BCP-C08
    assert query["scope"] == ["read:user user:email"]
    assert query["code_challenge_method"] == ["S256"]  # BCP-C03
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"][0])
    assert query["redirect_uri"] == [f"{APP}/auth/github/callback"]

    assert flow.callback is not None
    assert flow.callback.status_code == 303
    assert flow.callback.headers["location"] == f"{APP}/dashboard?tab=1"
    assert flow.callback.headers["cache-control"] == "no-store"  # W-70 / BCP-C11
    assert flow.callback.headers["referrer-policy"] == "no-referrer"
    assert_no_secret_in_locations(flow)  # W-68

    (identity,) = env.identities
    assert identity.provider == "github"
    assert identity.subject == "1001"  # GitHub's numeric id, not the login or e-mail
    assert identity.email == "alice@example.com"  # the verified primary, not the others
    assert identity.email_verified is True
    assert identity.name == "Alice Liddell"

    me = await browser.get(f"{APP}/me")
    assert me.status_code == 200
    assert me.json()["provider"] == "github"


async def test_transaction_cookie_flags_and_deletion_on_returned_response(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    """W-36: ``__Host-``, HttpOnly, Secure, SameSite=Lax, Max-Age <= 600; deleted by callback."""
    env = await make_env({"github": github_provider(fake_github)})
    flow = await login(env.browser(), "github")
    (set_tx,) = flow.start.headers.get_list("set-cookie")
    name = set_tx.split("=", 1)[0]
    assert name.startswith(APP_COOKIE + "_tx_")
    attrs = [a.strip().lower() for a in set_tx.split(";")[1:]]
    assert "httponly" in attrs
    assert "secure" in attrs
    assert "samesite=lax" in attrs
    assert "path=/" in attrs
    assert not any(a.startswith("domain") for a in attrs)
    max_age = next(int(a.split("=")[1]) for a in attrs if a.startswith("max-age="))
    assert 0 < max_age <= 600

    assert flow.callback is not None
    assert flow.callback.status_code == 303
    cleared = [h for h in flow.callback.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(cleared) == 1
    assert "Max-Age=0" in cleared[0]
    expires = next(a for a in cleared[0].split("; ") if a.startswith("expires="))
    assert parsedate_to_datetime(expires.removeprefix("expires=")) <= datetime.now(UTC)
    session = session_cookie(flow.callback)
    assert session is not None
    (set_session,) = [
        h
        for h in flow.callback.headers.get_list("set-cookie")
        if h.startswith(SESSION_COOKIE + "=")
    ]
    assert "HttpOnly" in set_session
    assert "Secure" in set_session
    assert "SameSite=lax" in set_session


async def test_unverified_primary_email_is_refused_without_session(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    fake_github.current_user = "mallory"  # primary alice@example.com, unverified
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github")
    assert flow.callback is not None
    assert_error_page(flow.callback, 403, "EmailNotVerified")
    assert "not verified" in flow.callback.text
    assert await env.count("ts_client_sessions") == 0
    assert await env.count("ts_client_users") == 0
    assert (await browser.get(f"{APP}/me")).status_code == 401


async def test_unverified_email_never_links_to_existing_account(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    """W-91 with verification not required: mallory shows alice's (unverified) address and gets
    her own new account, not alice's."""
    env = await make_env({"github": github_provider(fake_github)}, require_verified_email=False)
    alice = await login(env.browser(), "github")
    assert alice.callback is not None
    assert alice.callback.status_code == 303
    alice_id = env.identities[0].subject

    fake_github.current_user = "mallory"
    browser = env.browser()
    mallory = await login(browser, "github")
    assert mallory.callback is not None
    assert mallory.callback.status_code == 303
    identity = env.identities[1]
    assert identity.email is None
    assert identity.email_verified is False
    assert identity.unverified_email == "alice@example.com"
    me = (await browser.get(f"{APP}/me")).json()
    alice_user = await env.store.find_user_by_identity("github", alice_id)
    assert me["user_id"] != alice_user
    assert await env.count("ts_client_users") == 2


async def test_user_pressed_cancel(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    fake_github.deny = True
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "LoginCancelled")
    assert "cancelled" in flow.callback.text
    assert fake_github.token_requests == 0
    # the transaction cookie is cleared on the error page too
    assert any("Max-Age=0" in h for h in flow.callback.headers.get_list("set-cookie"))
    assert await env.count("ts_client_sessions") == 0


async def test_token_endpoint_error_bad_verification_code(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    fake_github.codes.clear()  # the code expired at GitHub
    callback = await browser.get(flow.callback_url)
    assert_error_page(callback, 400, "ProviderError")
    assert fake_github.token_requests == 1
    assert await env.count("ts_client_sessions") == 0


async def test_wrong_client_secret_is_a_provider_error(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    provider = GitHubProvider(
        client_id=fake_github.client_id,
        client_secret="wrong",
        base_url=fake_github.url,
        api_url=fake_github.url,
    )
    env = await make_env({"github": provider})
    flow = await login(env.browser(), "github")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "ProviderError")


async def test_provider_unreachable_is_a_502_page(make_env: MakeEnv) -> None:
    dead = dead_url()
    provider = GitHubProvider(
        client_id="c", client_secret="s", base_url=dead, api_url=dead, timeout=2.0
    )
    env = await make_env({"github": provider})
    browser = env.browser()
    start = await browser.get(f"{APP}/auth/github/login")
    assert start.status_code == 302
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    callback = await browser.get(
        f"{APP}/auth/github/callback", params={"code": "abc", "state": state}
    )
    assert_error_page(callback, 502, "ProviderUnavailable")
    assert await env.count("ts_client_sessions") == 0


async def test_unknown_provider_page(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    response = await env.browser().get(f"{APP}/auth/<script>/login")
    assert_error_page(response, 404, "UnknownProvider")
    assert "<script>" not in response.text


async def test_github_enterprise_urls() -> None:
    provider = GitHubProvider(
        client_id="c",
        client_secret="s",
        base_url="https://ghe.example/",
        api_url="https://ghe.example/api/v3",
    )
    assert provider.authorization_endpoint == "https://ghe.example/login/oauth/authorize"
    assert provider.token_endpoint == "https://ghe.example/login/oauth/access_token"
    assert provider.api_base_urls == ("https://ghe.example/api/v3",)
    assert "s" not in repr(provider).replace("client_secret", "").split("client_id")[0]
    assert "'s'" not in repr(provider)


async def test_provider_timeout_is_a_502_page(make_env: MakeEnv) -> None:
    async with hanging_server() as url:
        provider = GitHubProvider(
            client_id="c", client_secret="s", base_url=url, api_url=url, timeout=0.3
        )
        env = await make_env({"github": provider})
        browser = env.browser()
        start = await browser.get(f"{APP}/auth/github/login")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        callback = await browser.get(
            f"{APP}/auth/github/callback", params={"code": "abc", "state": state}
        )
        assert_error_page(callback, 502, "ProviderUnavailable")
        assert "try again" in callback.text
        assert await env.count("ts_client_sessions") == 0
