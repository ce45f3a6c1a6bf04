"""W-95: the back-channel logout receiver accepts only real logout tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.client.conftest import (
    APP,
    Env,
    MakeEnv,
    github_provider,
    login,
    oidc_provider,
)
from tests.client.fake_github import FakeGitHub
from tests.client.fake_oidc import OTHER_EC_KEY, FakeOIDC


async def signed_in(env: Env) -> httpx.AsyncClient:
    browser = env.browser()
    flow = await login(browser, "op")
    assert flow.callback is not None
    assert flow.callback.status_code == 303
    assert (await browser.get(f"{APP}/me")).status_code == 200
    return browser


async def post_logout_token(env: Env, token: str, provider: str = "op") -> httpx.Response:
    return await env.browser().post(
        f"{APP}/auth/{provider}/backchannel-logout", data={"logout_token": token}
    )


async def test_logout_token_by_sub_ends_the_session(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = await signed_in(env)
    token = fake_oidc.logout_token(drop=("sid",))
    response = await post_logout_token(env, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await browser.get(f"{APP}/me")).status_code == 401
    assert await env.count("ts_client_sessions") == 0
    # the same token again (same jti) is a replay
    assert (await post_logout_token(env, token)).status_code == 400


async def test_logout_token_by_sid_ends_only_that_session(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = await signed_in(env)
    fake_oidc.sid = "sid-2"
    other = await signed_in(env)
    response = await post_logout_token(env, fake_oidc.logout_token(drop=("sub",), sid="sid-1"))
    assert response.status_code == 200
    assert (await browser.get(f"{APP}/me")).status_code == 401
    assert (await other.get(f"{APP}/me")).status_code == 200


async def test_replayed_jti_is_refused_and_kills_no_later_session(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    """OpenID Connect Back-Channel Logout 1.0 §2.4: a captured logout token, replayed within its
    lifetime, must not sign the user out of the session they started since."""
    env = await make_env({"op": oidc_provider(fake_oidc)})
    await signed_in(env)
    captured = fake_oidc.logout_token()
    assert (await post_logout_token(env, captured)).status_code == 200
    browser = await signed_in(env)  # the user signs in again
    response = await post_logout_token(env, captured)
    assert response.status_code == 400
    assert (await browser.get(f"{APP}/me")).status_code == 200


def _now() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, dict[str, Any]] = {
    "typ-JWT": {"typ": "JWT"},
    "id-token-replayed-as-logout-token": {"typ": "JWT", "nonce": "n"},
    "missing-events": {"drop": ("events",)},
    "events-wrong-member": {"events": {"http://schemas.openid.net/event/other": {}}},
    "events-not-object": {"events": {"http://schemas.openid.net/event/backchannel-logout": "x"}},
    "with-nonce": {"nonce": "abc"},
    "long-exp": {"exp": _now() + 3600},
    "expired": {"exp": _now() - 3600, "iat": _now() - 3700},
    "wrong-aud": {"aud": "someone-else"},
    "wrong-iss": {"iss": "https://evil.example"},
    "missing-iat": {"drop": ("iat",)},
    "no-sub-no-sid": {"drop": ("sub", "sid")},
    "missing-jti": {"drop": ("jti",)},
    "empty-jti": {"jti": ""},
    "jti-not-a-string": {"jti": 12345},
    "bad-signature": {"key": OTHER_EC_KEY},
    "alg-none": {"typ": "none-alg"},
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_logout_token_kills_nothing(
    make_env: MakeEnv, fake_oidc: FakeOIDC, case: str
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = await signed_in(env)
    response = await post_logout_token(env, fake_oidc.logout_token(**BAD_TOKENS[case]))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}
    assert (await browser.get(f"{APP}/me")).status_code == 200


async def test_missing_token_and_github(
    make_env: MakeEnv, fake_oidc: FakeOIDC, fake_github: FakeGitHub
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc), "github": github_provider(fake_github)})
    browser = env.browser()
    assert (await browser.post(f"{APP}/auth/op/backchannel-logout")).status_code == 400
    response = await post_logout_token(env, fake_oidc.logout_token(), provider="github")
    assert response.status_code == 400
    response = await post_logout_token(env, fake_oidc.logout_token(), provider="nope")
    assert response.status_code == 404


async def test_an_oversized_logout_request_is_not_read_to_the_end(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    """The receiver is open to anyone: a 64 MiB body is refused after at most the 32 KiB cap plus
    one chunk has been read, not buffered whole."""
    env = await make_env({"op": oidc_provider(fake_oidc)})
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1024):  # 64 MiB in 64 KiB chunks, pulled only as the server reads
            pulled += 1
            yield b"logout_token=" + b"x" * (64 * 1024 - 13)

    response = await env.browser().post(
        f"{APP}/auth/op/backchannel-logout",
        content=body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert pulled <= 2
