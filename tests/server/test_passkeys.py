"""Passkeys (issue 18, item 4) through the real pages and endpoints, with a software
authenticator (``tests.support.authenticator``: real keys, CBOR and signatures, verified by
py_webauthn as a browser's would be): registration on the account page, passwordless sign-in,
the passkey as a second factor, honest ``amr``/``acr``, and each verification rule: the origin,
the RP ID, a replayed response, a challenge of another browser, the signature counter (clone
detection), user verification for passwordless sign-in, CSRF, removal with the password, and the
CSP that lets the passkey script run only where it is needed. SQLite and PostgreSQL (+ Redis)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.server.harness import PASSWORD, ServerEnv, hidden_fields
from tests.support.audit import events
from tests.support.authenticator import SoftAuthenticator
from tests.support.mfa import (
    OIDC,
    ORIGIN,
    RP_ID,
    csrf,
    finish,
    register_passkey,
    signed_in,
    submit_code,
    to_second_step,
    tokens,
)
from tests.support.oidc import oidc_client, verify_id_token
from tokensmith.core.mfa import ACR_MULTI_FACTOR
from tokensmith.core.registration import NewClient
from tokensmith.core.throttle import ADDRESS


async def setup(env: ServerEnv) -> tuple[NewClient, httpx.AsyncClient, SoftAuthenticator]:
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    auth = SoftAuthenticator(RP_ID, ORIGIN)
    done = await register_passkey(env, ua, auth)
    assert done.status_code == 303, done.text[:500]
    return client, ua, auth


async def login_page(
    env: ServerEnv, ua: httpx.AsyncClient, client: NewClient
) -> tuple[Any, dict[str, str]]:
    flow = await env.start_authorize(ua, client, **OIDC)
    page = await ua.get(flow.response.headers["location"])
    assert page.status_code == 200
    fields = hidden_fields(page.text)
    return flow, {"txn": fields["txn"], "csrf_token": fields["csrf_token"]}


async def sign_in_options(
    env: ServerEnv, ua: httpx.AsyncClient, fields: dict[str, str]
) -> dict[str, Any]:
    options = await ua.post(env.settings.login_path + "/passkey/options", data=fields)
    assert options.status_code == 200, options.text[:300]
    body: dict[str, Any] = options.json()
    return body


async def post_sign_in(
    env: ServerEnv, ua: httpx.AsyncClient, fields: dict[str, str], credential: str
) -> httpx.Response:
    return await ua.post(
        env.settings.login_path + "/passkey", data={**fields, "credential": credential}
    )


async def test_register_then_sign_in_without_a_password(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, auth = await setup(env)
    account = await ua.get(env.settings.account_path)
    assert "Laptop" in account.text
    assert "never used" in account.text
    assert "script-src 'self'" in account.headers["content-security-policy"]

    browser = env.browser()
    flow, fields = await login_page(env, browser, client)
    options = await sign_in_options(env, browser, fields)
    assert options["allowCredentials"] == []  # discoverable credentials
    assert options["userVerification"] == "required"
    response = await post_sign_in(env, browser, fields, auth.get(options))
    assert response.status_code == 303, response.text[:500]
    body = await tokens(env, client, await finish(env, browser, response), flow)
    claims = await verify_id_token(env, client, body)
    assert claims["amr"] == ["swk", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR
    account = await browser.get(env.settings.account_path)
    assert account.status_code == 200
    assert "last used" in account.text
    recorded = [e[0] for e in await events(env)]
    assert "passkey.registered" in recorded
    assert "passkey.used" in recorded


async def test_a_passkey_as_the_second_factor(server_env: ServerEnv) -> None:
    env = server_env
    client, _, auth = await setup(env)
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    assert 'id="passkey-second-factor"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    fields = hidden_fields(page.text)
    options = await ua.post(
        env.settings.mfa_path + "/passkey-options",
        data={"txn": fields["txn"], "csrf_token": fields["csrf_token"]},
    )
    assert options.status_code == 200, options.text[:300]
    body = options.json()
    assert [c["id"] for c in body["allowCredentials"]] == [
        json.loads(auth.get(body, count=0))["id"]
    ]
    response = await submit_code(env, ua, page, auth.get(body), factor="passkey")
    assert response.status_code == 303, response.text[:500]
    result = await tokens(env, client, await finish(env, ua, response), flow)
    claims = await verify_id_token(env, client, result)
    assert claims["amr"] == ["pwd", "swk", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR
    assert await env.scalar(UNFINISHED) == 0  # its options request was given back


async def test_a_response_for_another_origin_or_rp_id_is_refused(server_env: ServerEnv) -> None:
    """Phishing resistance: what an authenticator signs for a look-alike site (its origin in
    the client data, its RP ID's hash in the authenticator data) does not sign anyone in."""
    env = server_env
    client, _, auth = await setup(env)
    for kwargs in ({"origin": "https://as.test.evil.example"}, {"rp_id": "evil.example"}):
        ua = env.browser()
        _, fields = await login_page(env, ua, client)
        options = await sign_in_options(env, ua, fields)
        refused = await post_sign_in(env, ua, fields, auth.get(options, **kwargs))
        assert refused.status_code == 401, refused.text[:300]
        assert "could not be used" in refused.text
        assert not any("session" in name for name in ua.cookies)


async def test_registration_for_another_origin_is_refused(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    phished = SoftAuthenticator(RP_ID, "https://evil.example")
    refused = await register_passkey(env, ua, phished)
    assert refused.status_code == 400
    assert await env.count("ts_passkeys") == 0


async def test_adding_a_passkey_needs_the_password(server_env: ServerEnv) -> None:
    """A password-only session alone (a stolen cookie, an unattended browser) cannot add a
    passkey of its own, which would let it sign in without the password and make it the
    account's second factor: the current password is needed, and a wrong one is counted."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    attacker = SoftAuthenticator(RP_ID, ORIGIN)
    for password in ("", "not the password"):
        refused = await register_passkey(env, ua, attacker, password=password)
        assert refused.status_code == 401, refused.text[:300]
    assert await env.count("ts_passkeys") == 0
    failed = [e for e in await events(env) if e[0] == "mfa.failed"]
    assert len(failed) == 2
    # the session stayed single-factor, and the right password adds the passkey
    done = await register_passkey(env, ua, SoftAuthenticator(RP_ID, ORIGIN))
    assert done.status_code == 303, done.text[:300]
    assert await env.count("ts_passkeys") == 1


async def test_a_response_works_once_and_only_in_its_browser(server_env: ServerEnv) -> None:
    env = server_env
    client, _, auth = await setup(env)
    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    options = await sign_in_options(env, ua, fields)
    # the challenge was asked for by ``ua``: another browser (the attacker's) cannot use it
    other = env.browser()
    _, other_fields = await login_page(env, other, client)
    stolen = await post_sign_in(env, other, other_fields, auth.get(options))
    assert stolen.status_code == 401
    # a fresh challenge; its response is accepted once, then replayed in vain
    options = await sign_in_options(env, ua, fields)
    credential = auth.get(options)
    first = await post_sign_in(env, ua, fields, credential)
    assert first.status_code == 303, first.text[:300]
    again = env.browser()
    _, again_fields = await login_page(env, again, client)
    replayed = await post_sign_in(env, again, again_fields, credential)
    assert replayed.status_code == 401


async def test_an_expired_challenge_is_refused(server_env: ServerEnv) -> None:
    env = server_env
    client, _, auth = await setup(env)
    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    options = await sign_in_options(env, ua, fields)
    env.clock.advance(301)
    _, fields = await login_page(env, ua, client)
    refused = await post_sign_in(env, ua, fields, auth.get(options))
    assert refused.status_code == 401


async def test_a_counter_that_goes_backwards_is_refused_and_audited(
    server_env: ServerEnv,
) -> None:
    """WebAuthn §6.1.1: a validly signed assertion whose counter does not advance means the
    credential may be cloned: refused, ``passkey.counter_regression`` audited."""
    env = server_env
    client, _, auth = await setup(env)
    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    options = await sign_in_options(env, ua, fields)
    assert (await post_sign_in(env, ua, fields, auth.get(options, count=7))).status_code == 303
    clone = env.browser()
    _, fields = await login_page(env, clone, client)
    options = await sign_in_options(env, clone, fields)
    refused = await post_sign_in(env, clone, fields, auth.get(options, count=7))
    assert refused.status_code == 401
    _, fields = await login_page(env, clone, client)
    options = await sign_in_options(env, clone, fields)
    refused = await post_sign_in(env, clone, fields, auth.get(options, count=3))
    assert refused.status_code == 401
    recorded = [e[0] for e in await events(env)]
    assert recorded.count("passkey.counter_regression") == 2
    assert await env.scalar("SELECT sign_count FROM ts_passkeys") == 7


async def test_passwordless_sign_in_needs_user_verification(server_env: ServerEnv) -> None:
    env = server_env
    client, _, auth = await setup(env)
    auth.user_verified = False
    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    options = await sign_in_options(env, ua, fields)
    refused = await post_sign_in(env, ua, fields, auth.get(options))
    assert refused.status_code == 401


async def test_the_forms_need_their_csrf_token(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, _ = await setup(env)
    refused = await ua.post(
        env.settings.account_path + "/passkeys/options", data={"csrf_token": "nope"}
    )
    assert refused.status_code == 403
    browser = env.browser()
    _, fields = await login_page(env, browser, client)
    refused = await browser.post(
        env.settings.login_path + "/passkey/options",
        data={"txn": fields["txn"], "csrf_token": "nope"},
    )
    assert refused.status_code == 403
    assert await env.scalar("SELECT COUNT(*) FROM ts_account_tokens") == 1  # registration's


async def test_removing_a_passkey_needs_the_password(server_env: ServerEnv) -> None:
    env = server_env
    _, ua, _ = await setup(env)
    account = await ua.get(env.settings.account_path)
    token = csrf(account)
    passkey = await env.scalar("SELECT id FROM ts_passkeys")
    wrong = await ua.post(
        env.settings.account_path + "/passkeys/remove",
        data={"csrf_token": token, "passkey": passkey, "password": "not the password"},
    )
    assert wrong.status_code == 401
    assert await env.count("ts_passkeys") == 1
    done = await ua.post(
        env.settings.account_path + "/passkeys/remove",
        data={"csrf_token": token, "passkey": passkey, "password": PASSWORD},
    )
    assert done.status_code == 303, done.text[:300]
    assert await env.count("ts_passkeys") == 0
    assert "passkey.removed" in [e[0] for e in await events(env)]


async def test_only_the_passkey_pages_may_run_a_script(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client, **OIDC)
    login = await ua.get(flow.response.headers["location"])
    assert '<script src="/static/passkeys.js" defer></script>' in login.text
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert "<script>" not in login.text  # nothing inline
    error = await ua.get(env.settings.login_path + "?txn=unknown")
    assert "script-src" not in error.headers["content-security-policy"]
    js = await ua.get("/static/passkeys.js")
    assert js.status_code == 200
    assert "navigator.credentials" in js.text


async def test_a_second_factor_response_is_not_accepted_twice(server_env: ServerEnv) -> None:
    """An authenticator without a counter (always 0, allowed by WebAuthn) is not protected by
    the counter: the single-use challenge is what refuses the same response at a later second
    step of the same user."""
    env = server_env
    client, _, auth = await setup(env)
    responses = []
    for _ in range(2):
        ua = env.browser()
        _, page = await to_second_step(env, ua, client, **OIDC)
        fields = hidden_fields(page.text)
        options = await ua.post(
            env.settings.mfa_path + "/passkey-options",
            data={"txn": fields["txn"], "csrf_token": fields["csrf_token"]},
        )
        if not responses:
            responses.append(auth.get(options.json(), count=0))
        done = await submit_code(env, ua, page, responses[0], factor="passkey")
        responses.append(done)
    first, second = responses[1], responses[2]
    assert isinstance(first, httpx.Response)
    assert isinstance(second, httpx.Response)
    assert first.status_code == 303, first.text[:300]
    assert second.status_code == 401


async def test_the_operator_resets_and_deletion_remove_passkeys(server_env: ServerEnv) -> None:
    env = server_env
    await setup(env)
    assert await env.admin.reset_mfa("alice")  # a passkey alone counts as a factor to reset
    assert await env.count("ts_passkeys") == 0
    assert not await env.admin.reset_mfa("alice")
    ua = await signed_in(env, await oidc_client(env, name="Other"))
    assert (await register_passkey(env, ua, SoftAuthenticator(RP_ID, ORIGIN))).status_code == 303
    await env.admin.delete_user("alice")
    assert await env.count("ts_passkeys") == 0


CHALLENGES = "SELECT count(*) FROM ts_account_tokens WHERE purpose LIKE 'passkey%'"
UNFINISHED = "SELECT count FROM ts_login_failures WHERE key LIKE 'passkey-options:ip:%'"


async def test_passkey_options_are_throttled_per_address(server_env: ServerEnv) -> None:
    """Red team: every options request stores a challenge, so the login page's and the second
    step's options requests are counted per address with the login's back-off (429 with
    ``Retry-After``, no challenge stored); a finished ceremony gives its request back."""
    env = server_env
    client, _, auth = await setup(env)
    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    options = await sign_in_options(env, ua, fields)
    assert (await post_sign_in(env, ua, fields, auth.get(options))).status_code == 303
    assert await env.scalar(UNFINISHED) == 0  # the finished one was given back

    ua = env.browser()
    _, fields = await login_page(env, ua, client)
    for _ in range(ADDRESS.free_attempts):
        await sign_in_options(env, ua, fields)
    stored = await env.scalar(CHALLENGES)
    refused = await ua.post(env.settings.login_path + "/passkey/options", data=fields)
    assert refused.status_code == 429
    assert refused.json() == {"error": "slow_down"}
    assert int(refused.headers["retry-after"]) >= 1
    other = env.browser()  # the second step's options share the address's counter
    _, page = await to_second_step(env, other, client, **OIDC)
    step = hidden_fields(page.text)
    second = await other.post(
        env.settings.mfa_path + "/passkey-options",
        data={"txn": step["txn"], "csrf_token": step["csrf_token"]},
    )
    assert second.status_code == 429
    assert await env.scalar(CHALLENGES) == stored  # nothing stored while refused
    env.clock.advance(ADDRESS.base_delay)
    await sign_in_options(env, ua, fields)


async def test_the_account_pages_passkey_options_are_throttled_per_user(
    server_env: ServerEnv,
) -> None:
    """Red team: the account page's "add a passkey" options request stores a challenge each
    time, so a signed-in session could fill the table with them. Each request is counted per
    user with the login's back-off: past it, 429 with ``Retry-After`` and nothing stored."""
    env = server_env
    _, ua, _ = await setup(env)
    path = env.settings.account_path + "/passkeys/options"
    token = csrf(await ua.get(env.settings.account_path))
    for _ in range(ADDRESS.free_attempts - 1):  # setup's registration asked once
        assert (await ua.post(path, data={"csrf_token": token})).status_code == 200
    stored = await env.scalar(CHALLENGES)
    refused = await ua.post(path, data={"csrf_token": token})
    assert refused.status_code == 429
    assert refused.json() == {"error": "slow_down"}
    assert int(refused.headers["retry-after"]) >= 1
    assert await env.scalar(CHALLENGES) == stored
    env.clock.advance(ADDRESS.base_delay)
    assert (await ua.post(path, data={"csrf_token": token})).status_code == 200
