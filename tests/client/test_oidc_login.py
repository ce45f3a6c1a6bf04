"""Login with an OpenID Connect provider (the corruptible stand-in), over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client.conftest import (
    APP,
    Clock,
    MakeEnv,
    assert_error_page,
    assert_no_secret_in_locations,
    login,
    oidc_provider,
    session_cookie,
)
from tests.client.fake_oidc import FakeOIDC
from tests.client.servers import serve
from tokensmith.client import OIDCProvider, google, oidc


async def test_oidc_login(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    flow = await login(browser, "op")
    query = parse_qs(urlsplit(flow.start.headers["location"]).query)
    assert query["scope"] == ["openid email profile"]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["nonce"][0]) >= 43  # oidcc-client-test-nonce-unless-code-flow

    assert flow.callback is not None
    assert flow.callback.status_code == 303, flow.callback.text
    assert flow.callback.headers["location"] == f"{APP}/"
    assert_no_secret_in_locations(flow)
    (identity,) = env.identities
    assert identity.issuer == fake_oidc.issuer
    assert identity.subject == fake_oidc.subject
    assert identity.email == "jane@example.org"
    assert identity.email_verified is True
    assert fake_oidc.userinfo_requests == 0  # the ID token carried the e-mail
    assert (await browser.get(f"{APP}/me")).json()["provider"] == "op"


async def test_rs256_provider_and_userinfo_when_id_token_lacks_email(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    fake_oidc.alg = "RS256"
    fake_oidc.behaviour = {"no-email-in-id-token"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert flow.callback.status_code == 303, flow.callback.text
    assert fake_oidc.userinfo_requests == 1
    assert env.identities[0].email == "jane@example.org"


def _two_logins_differ(a: str, b: str) -> None:
    qa, qb = parse_qs(urlsplit(a).query), parse_qs(urlsplit(b).query)
    for name in ("state", "nonce", "code_challenge"):
        assert qa[name] != qb[name]


async def test_fresh_values_per_login(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """BCP-C03: two logins -> different state, nonce and code_challenge."""
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    one = await browser.get(f"{APP}/auth/op/login")
    two = await browser.get(f"{APP}/auth/op/login")
    _two_logins_differ(one.headers["location"], two.headers["location"])


@pytest.mark.parametrize(
    "behaviour",
    [
        "wrong-nonce",  # oidcc-client-test-nonce-invalid, BCP-C07
        "wrong-aud",  # oidcc-client-test-invalid-aud
        "multi-aud-no-azp",
        "bad-signature",  # oidcc-client-test-invalid-sig-es256
        "tampered",
        "wrong-iss",  # oidcc-client-test-invalid-iss
        "expired",
        "missing-iat",  # oidcc-client-test-missing-iat
        "missing-sub",  # oidcc-client-test-missing-sub
        "alg-none",  # oidcc-client-test-idtoken-sig-none
        "hs256-with-public-key",
        "wrong-at-hash",
        "unknown-kid",
    ],
)
async def test_bad_id_token_is_refused_without_session(
    make_env: MakeEnv, fake_oidc: FakeOIDC, behaviour: str
) -> None:
    fake_oidc.behaviour = {behaviour}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    flow = await login(browser, "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "InvalidIdToken")
    assert fake_oidc.userinfo_requests == 0  # ignore all tokens until the ID token passes
    assert env.identities == []
    assert await env.count("ts_client_sessions") == 0
    assert await env.count("ts_client_upstream_tokens") == 0
    assert (await browser.get(f"{APP}/me")).status_code == 401


async def test_rs256_bad_signature(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """oidcc-client-test-invalid-sig-rs256: signature by another key under the right kid."""
    fake_oidc.alg = "RS256"
    fake_oidc.behaviour = {"tampered"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "InvalidIdToken")


async def test_userinfo_with_other_sub_is_refused(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """oidcc-client-test-userinfo-invalid-sub."""
    fake_oidc.behaviour = {"no-email-in-id-token", "userinfo-wrong-sub"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "InvalidIdToken")
    assert await env.count("ts_client_sessions") == 0


async def test_wrong_iss_parameter_is_refused_before_token_request(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    """RFC 9207 / BCP-C05: an ``iss`` that is not our provider's aborts, no token request."""
    fake_oidc.behaviour = {"iss-wrong"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "IssuerMismatch")
    assert fake_oidc.token_requests == 0
    assert await env.count("ts_client_sessions") == 0


async def test_missing_iss_when_advertised_is_refused(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    fake_oidc.behaviour = {"advertise-iss", "iss-missing"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "IssuerMismatch")
    assert fake_oidc.token_requests == 0


async def test_missing_iss_when_not_advertised_is_accepted(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    fake_oidc.behaviour = {"iss-missing"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert flow.callback.status_code == 303


async def test_mix_up_between_two_providers(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """BCP-C05/C06: a response for P1 delivered to P2's callback (or carrying P2's iss) aborts."""
    other = FakeOIDC(client_id="other-client")
    async with serve(other.app):
        env = await make_env({"p1": oidc_provider(fake_oidc), "p2": oidc_provider(other)})
        browser = env.browser()
        flow = await login(browser, "p1", complete=False)
        wrong_path = flow.callback_url.replace("/auth/p1/callback", "/auth/p2/callback")
        response = await browser.get(wrong_path)
        assert_error_page(response, 400, "InvalidState")
        assert fake_oidc.token_requests == 0
        assert other.token_requests == 0

        flow = await login(browser, "p1", complete=False)
        query = parse_qs(urlsplit(flow.callback_url).query)
        response = await browser.get(
            f"{APP}/auth/p1/callback",
            params={"code": query["code"][0], "state": query["state"][0], "iss": other.issuer},
        )
        assert_error_page(response, 400, "IssuerMismatch")
        assert fake_oidc.token_requests == 0
        assert other.token_requests == 0


async def test_discovery_issuer_mismatch_refuses_to_start(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    """BCP-C10 / oidcc-client-test-discovery-issuer-mismatch."""
    fake_oidc.behaviour = {"discovery-issuer-mismatch"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    response = await env.browser().get(f"{APP}/auth/op/login")
    assert_error_page(response, 502, "ProviderUnavailable")
    assert not response.headers.get_list("set-cookie")


async def test_failed_discovery_is_cached_briefly(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """While the provider is down, logins and back-channel requests (unauthenticated, anyone can
    send them) cost one discovery call per ``discovery_failure_ttl``, not one each; concurrent
    ones share a single call; once the interval passes discovery is tried again."""
    fake_oidc.behaviour = {"discovery-down"}
    clock = Clock()
    env = await make_env({"op": oidc_provider(fake_oidc)}, clock=clock)
    browser = env.browser()
    for _ in range(3):
        assert_error_page(await browser.get(f"{APP}/auth/op/login"), 502, "ProviderUnavailable")
    logout = await browser.post(
        f"{APP}/auth/op/backchannel-logout", data={"logout_token": fake_oidc.logout_token()}
    )
    assert logout.status_code == 502
    assert fake_oidc.discovery_requests == 1

    fake_oidc.behaviour = set()  # back up, but the failure is remembered for 5 s
    clock.now += 4
    assert_error_page(await browser.get(f"{APP}/auth/op/login"), 502, "ProviderUnavailable")
    assert fake_oidc.discovery_requests == 1

    fake_oidc.behaviour = {"discovery-down"}
    clock.now += 2
    pages = await asyncio.gather(*(browser.get(f"{APP}/auth/op/login") for _ in range(5)))
    assert {page.status_code for page in pages} == {502}
    assert fake_oidc.discovery_requests == 2  # retried once, shared by the five

    fake_oidc.behaviour = set()
    clock.now += 6
    assert (await browser.get(f"{APP}/auth/op/login")).status_code == 302
    assert fake_oidc.discovery_requests == 3


async def test_token_endpoint_error(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    fake_oidc.behaviour = {"token-error"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "ProviderError")


async def test_token_endpoint_500_is_a_502_page(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    fake_oidc.behaviour = {"token-500"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 502, "ProviderUnavailable")


async def test_provider_down_at_login_is_a_502_page(make_env: MakeEnv) -> None:
    from tests.client.servers import dead_url

    provider = OIDCProvider(issuer=dead_url(), client_id="c", client_secret="s", timeout=2.0)
    env = await make_env({"op": provider})
    response = await env.browser().get(f"{APP}/auth/op/login")
    assert_error_page(response, 502, "ProviderUnavailable")


async def test_user_cancelled_at_oidc_provider(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    fake_oidc.deny = True
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "LoginCancelled")


async def test_unverified_email_no_auto_link(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """W-91: another provider identity showing jane's address unverified gets its own account."""
    env = await make_env({"op": oidc_provider(fake_oidc)}, require_verified_email=False)
    first = await login(env.browser(), "op")
    assert first.callback is not None
    jane = session_cookie(first.callback)
    assert jane is not None

    fake_oidc.subject = "attacker-sub"
    fake_oidc.email_verified = False
    browser = env.browser()
    second = await login(browser, "op")
    assert second.callback is not None
    assert second.callback.status_code == 303
    jane_user = await env.store.find_user_by_identity("op", "248289761001")
    attacker_user = (await browser.get(f"{APP}/me")).json()["user_id"]
    assert attacker_user != jane_user
    assert env.identities[1].email is None


async def test_unverified_email_refused_by_default(
    make_env: MakeEnv, fake_oidc: FakeOIDC, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15, trap 3: the refusal says what to do, to the person (page) and to the
    developer (log): have the address marked verified, or turn the requirement off."""
    fake_oidc.email_verified = False
    env = await make_env({"op": oidc_provider(fake_oidc)})
    caplog.set_level(logging.WARNING, logger="tokensmith.client")
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 403, "EmailNotVerified")
    assert "ask its administrator to mark it verified" in flow.callback.text
    (logged,) = [r.getMessage() for r in caplog.records if "EmailNotVerified" in r.getMessage()]
    assert "--email-verified" in logged
    assert "require_verified_email=False" in logged
    assert await env.count("ts_client_users") == 0


def test_presets() -> None:
    g = google("id", "secret")
    assert g.issuer == "https://accounts.google.com"
    assert g.scopes == ("openid", "email", "profile")
    assert "secret" not in repr(g)
    o = oidc("https://login.example/realms/x", "id", "secret")
    assert o.issuer == "https://login.example/realms/x"
    with pytest.raises(ValueError, match="openid"):
        OIDCProvider(issuer="https://x", client_id="a", client_secret="b", scopes=("email",))


async def test_kid_absent_with_a_single_key(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """oidcc-client-test-kid-absent-single-jwks."""
    fake_oidc.behaviour = {"no-kid"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op")
    assert flow.callback is not None
    assert flow.callback.status_code == 303, flow.callback.text


async def test_signing_key_rotation_refetches_jwks(make_env: MakeEnv, fake_oidc: FakeOIDC) -> None:
    """oidcc-client-test-signing-key-rotation: a new ``kid`` makes the JWKS cache refetch, at most
    once per interval (the toolkit's clock is injected into the cache)."""
    clock = Clock()
    env = await make_env({"op": oidc_provider(fake_oidc)}, clock=clock)
    first = await login(env.browser(), "op")
    assert first.callback is not None
    assert first.callback.status_code == 303
    assert fake_oidc.jwks_requests == 1

    fake_oidc.rotated = True
    too_soon = await login(env.browser(), "op")
    assert too_soon.callback is not None
    assert_error_page(too_soon.callback, 400, "InvalidIdToken")  # refetch is rate-limited
    assert fake_oidc.jwks_requests == 1

    clock.now += 31
    later = await login(env.browser(), "op")
    assert later.callback is not None
    assert later.callback.status_code == 303, later.callback.text
    assert fake_oidc.jwks_requests == 2


async def test_state_and_nonce_without_pkce_metadata(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    """BCP-C04: a provider that does not advertise PKCE still gets (and is checked for) state and
    nonce - and PKCE is sent anyway."""
    fake_oidc.behaviour = {"no-pkce-metadata"}
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    flow = await login(browser, "op", complete=False)
    query = parse_qs(urlsplit(flow.start.headers["location"]).query)
    assert {"state", "nonce", "code_challenge"} <= set(query)
    forged = flow.callback_url.replace(query["state"][0], query["state"][0][::-1])
    assert_error_page(await browser.get(forged), 400, "InvalidState")
    fake_oidc.behaviour = {"no-pkce-metadata", "wrong-nonce"}
    flow = await login(browser, "op")
    assert flow.callback is not None
    assert_error_page(flow.callback, 400, "InvalidIdToken")


async def test_client_secret_basic_encoding(make_env: MakeEnv) -> None:
    """oidcc-client-test-client-secret-basic: id and secret are form-urlencoded before Basic."""
    fake = FakeOIDC(client_id="id:with/odd+chars", client_secret="s3cr:t/+%é")
    async with serve(fake.app):
        env = await make_env({"op": oidc_provider(fake)})
        flow = await login(env.browser(), "op")
        assert flow.callback is not None
        assert flow.callback.status_code == 303, flow.callback.text

        wrong = OIDCProvider(issuer=fake.issuer, client_id=fake.client_id, client_secret="nope")
        env = await make_env({"op": wrong})
        flow = await login(env.browser(), "op")
        assert flow.callback is not None
        assert_error_page(flow.callback, 400, "ProviderError")
