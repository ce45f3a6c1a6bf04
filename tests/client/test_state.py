"""The login transaction: browser binding, single use, integrity, expiry (BCP-C01, C02, C09)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.client.conftest import (
    APP,
    Clock,
    MakeEnv,
    assert_error_page,
    github_provider,
    login,
    session_cookie,
)
from tests.client.fake_github import FakeGitHub


async def test_wrong_state(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    query = parse_qs(urlsplit(flow.callback_url).query)
    forged = {"code": query["code"][0], "state": query["state"][0][:-2] + "xx"}
    response = await browser.get(f"{APP}/auth/github/callback?{urlencode(forged)}")
    assert_error_page(response, 400, "InvalidState")
    assert fake_github.token_requests == 0
    assert await env.count("ts_client_sessions") == 0


async def test_missing_state_parameter(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    code = parse_qs(urlsplit(flow.callback_url).query)["code"][0]
    response = await browser.get(f"{APP}/auth/github/callback", params={"code": code})
    assert_error_page(response, 400, "InvalidState")
    assert fake_github.token_requests == 0


async def test_callback_in_another_browser(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    """BCP-C01 / V-52 / V-53: login CSRF. A's callback delivered to B, and B's to A -> refused."""
    env = await make_env({"github": github_provider(fake_github)})
    a, b = env.browser(), env.browser()
    flow_a = await login(a, "github", complete=False)
    flow_b = await login(b, "github", complete=False)
    response = await b.get(flow_a.callback_url)
    assert_error_page(response, 400, "InvalidState")
    response = await a.get(flow_b.callback_url)
    assert_error_page(response, 400, "InvalidState")
    assert fake_github.token_requests == 0
    assert await env.count("ts_client_sessions") == 0


async def test_replayed_callback(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    """BCP-C02: the same callback works once, even with the transaction cookie put back."""
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    tx_name, tx_value = next(iter(browser.cookies.items()))
    first = await browser.get(flow.callback_url)
    assert first.status_code == 303
    assert tx_name not in browser.cookies  # deleted by the returned response

    replay = await browser.get(flow.callback_url)
    assert_error_page(replay, 400, "InvalidState")

    attacker = env.browser()
    attacker.cookies.set(tx_name, tx_value, domain="app.test")
    replay = await attacker.get(flow.callback_url)
    assert_error_page(replay, 400, "TransactionReplayed")
    assert fake_github.token_requests == 1
    assert await env.count("ts_client_sessions") == 1


async def test_tampered_transaction_cookie(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    name, value = next(iter(browser.cookies.items()))
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    browser.cookies.set(name, flipped, domain="app.test")
    response = await browser.get(flow.callback_url)
    assert_error_page(response, 400, "InvalidState")
    assert fake_github.token_requests == 0


async def test_expired_transaction(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    """V-53: a state older than 10 minutes fails (the clock is injected, not waited for)."""
    clock = Clock()
    env = await make_env({"github": github_provider(fake_github)}, clock=clock)
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    clock.now += 601
    response = await browser.get(flow.callback_url)
    assert_error_page(response, 400, "InvalidState")
    assert "expired" in response.text


async def test_parallel_logins_in_one_browser(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    first = await login(browser, "github", complete=False)
    second = await login(browser, "github", complete=False)
    assert len(browser.cookies) == 2
    response = await browser.get(first.callback_url)
    assert response.status_code == 303
    response = await browser.get(second.callback_url)
    assert response.status_code == 303


async def test_duplicated_callback_parameters(make_env: MakeEnv, fake_github: FakeGitHub) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    browser = env.browser()
    flow = await login(browser, "github", complete=False)
    response = await browser.get(flow.callback_url + "&code=other")
    assert_error_page(response, 400, "LoginError")
    assert fake_github.token_requests == 0


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%0a/evil",
    ],
)
async def test_no_open_redirect_after_login(
    make_env: MakeEnv, fake_github: FakeGitHub, target: str
) -> None:
    """BCP-C09: ``next`` outside this origin falls back to the post-login path."""
    env = await make_env({"github": github_provider(fake_github)})
    flow = await login(env.browser(), "github", next=target)
    assert flow.callback is not None
    location = flow.callback.headers["location"]
    if target == "/%0a/evil":  # percent-encoded: stays a same-origin path
        assert location == f"{APP}/%0a/evil"
    else:
        assert location == f"{APP}/"
    assert session_cookie(flow.callback) is not None
