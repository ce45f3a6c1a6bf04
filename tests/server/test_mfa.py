"""Two-step verification (issue 18, item 4): TOTP set up on the account page, the sign-in's
second step, recovery codes, step-up of single-factor sessions, ``amr``/``acr`` in ID tokens,
throttling and replay. Every flow goes through the real pages; codes are computed with pyotp
from the key the set-up page shows, at the server's test clock. On SQLite and PostgreSQL (and
Redis for the short-lived state where it matters)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import text

from tests.server.harness import (
    PASSWORD,
    ServerEnv,
    assert_redirect_error,
    hidden_fields,
)
from tests.support.audit import events
from tests.support.cli import Cli
from tests.support.mfa import (
    KEY,
    OIDC,
    RECOVERY,
    Enrolment,
    csrf,
    enrol,
    finish,
    signed_in,
    submit_code,
    to_second_step,
    tokens,
)
from tests.support.oidc import oidc_client, verify_id_token
from tokensmith.core.mfa import ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR
from tokensmith.core.registration import NewClient


async def setup(env: ServerEnv) -> tuple[NewClient, httpx.AsyncClient, Enrolment]:
    """alice with TOTP set up in browser ``ua`` (whose session became multi-factor)."""
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    return client, ua, await enrol(env, ua)


async def test_sign_in_with_a_totp_code_gives_honest_amr_and_acr(server_env: ServerEnv) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    ua = env.browser()
    sessions_before = await env.count("ts_sessions")
    flow, page = await to_second_step(env, ua, client, **OIDC)
    # the password alone made no session and set no session cookie
    assert await env.count("ts_sessions") == sessions_before
    assert not any("session" in name for name in ua.cookies)
    assert "alice" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "script" not in page.headers["content-security-policy"]
    done = await finish(env, ua, await submit_code(env, ua, page, enrolment.code(env)))
    claims = await verify_id_token(env, client, await tokens(env, client, done, flow))
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR
    # the session records the factors and when the second one was used
    row = await env.scalar(
        "SELECT amr || '|' || mfa_at FROM ts_sessions WHERE mfa_at IS NOT NULL "
        "ORDER BY mfa_at DESC LIMIT 1"
    )
    assert row == f"pwd otp mfa|{int(env.clock())}"


async def test_a_password_without_a_factor_is_single_factor(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    flow = await env.authorize(env.browser(), client, acr_values=ACR_MULTI_FACTOR, **OIDC)
    # acr_values are voluntary: no factor to ask for, and the acr claim says what happened
    claims = await verify_id_token(env, client, await tokens(env, client, flow.response, flow))
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == ACR_SINGLE_FACTOR


async def test_wrong_code_is_refused_and_makes_no_session(server_env: ServerEnv) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    ua = env.browser()
    sessions = await env.count("ts_sessions")
    _, page = await to_second_step(env, ua, client, **OIDC)
    wrong = str((int(enrolment.code(env)) + 1) % 1_000_000).zfill(6)
    for attempt in (wrong, "", "abcdef", "1" * 7, enrolment.recovery_codes[0]):
        refused = await submit_code(env, ua, page, attempt)
        assert refused.status_code == 401, (attempt, refused.status_code)
        assert "not correct" in refused.text
    assert await env.count("ts_sessions") == sessions
    names = [e[0] for e in await events(env)]
    assert names.count("mfa.failed") == 5


async def test_a_totp_code_works_once_within_its_window(server_env: ServerEnv) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    code = enrolment.code(env)
    first = env.browser()
    _, page = await to_second_step(env, first, client, **OIDC)
    assert (await submit_code(env, first, page, code)).status_code == 303
    # seen over a shoulder and typed again in another browser, still in its 90 s window
    env.clock.advance(20)
    second = env.browser()
    _, page = await to_second_step(env, second, client, **OIDC)
    replay = await submit_code(env, second, page, code)
    assert replay.status_code == 401
    # an earlier step than the one used is refused too; the next step works
    assert (await submit_code(env, second, page, enrolment.code(env, offset=-1))).status_code == 401
    env.clock.advance(30)
    assert (await submit_code(env, second, page, enrolment.code(env))).status_code == 303


async def test_two_parallel_submissions_of_one_code_exactly_one_wins(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    browsers = [env.browser(), env.browser()]
    pages = [(await to_second_step(env, ua, client, **OIDC))[1] for ua in browsers]
    code = enrolment.code(env)
    answers = await asyncio.gather(
        *(submit_code(env, ua, page, code) for ua, page in zip(browsers, pages, strict=True))
    )
    assert sorted(a.status_code for a in answers) == [303, 401]


async def test_parallel_submissions_with_redis(redis_env: ServerEnv) -> None:
    """The same with the interactions and the throttling counters in Redis: the time step is
    used in SQL, atomically."""
    env = redis_env
    client, _, enrolment = await setup(env)
    browsers = [env.browser() for _ in range(3)]
    pages = [(await to_second_step(env, ua, client, **OIDC))[1] for ua in browsers]
    code = enrolment.code(env)
    answers = await asyncio.gather(
        *(submit_code(env, ua, page, code) for ua, page in zip(browsers, pages, strict=True))
    )
    assert sorted(a.status_code for a in answers) == [303, 401, 401]


async def test_attempts_are_throttled_per_account(server_env: ServerEnv) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    ua = env.browser()
    _, page = await to_second_step(env, ua, client, **OIDC)
    for _ in range(5):
        assert (await submit_code(env, ua, page, "000000")).status_code in (401, 303)
    throttled = await submit_code(env, ua, page, enrolment.code(env))
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    # the right code is not even checked while throttled: it still works after the wait
    env.clock.advance(int(throttled.headers["retry-after"]))
    assert (await submit_code(env, ua, page, enrolment.code(env))).status_code == 303
    assert "mfa.throttled" in [e[0] for e in await events(env)]


async def test_recovery_code_signs_in_once(server_env: ServerEnv) -> None:
    env = server_env
    client, _, enrolment = await setup(env)
    recovery = enrolment.recovery_codes[3]
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    assert "recovery" in page.text.lower()
    used = await submit_code(env, ua, page, recovery.upper(), factor="recovery_code")
    claims = await verify_id_token(
        env, client, await tokens(env, client, await finish(env, ua, used), flow)
    )
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    again = env.browser()
    _, page = await to_second_step(env, again, client, **OIDC)
    assert (await submit_code(env, again, page, recovery, factor="recovery_code")).status_code == (
        401
    )
    assert "mfa.recovery_code_used" in [e[0] for e in await events(env)]
    # only digests are stored
    async with env.admin.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT digest FROM ts_mfa_recovery_codes"))).fetchall()
    stored = {r[0] for r in rows}
    assert len(stored) == 10
    for code in enrolment.recovery_codes:
        assert code not in stored
        assert code.replace("-", "") not in stored


async def test_the_key_is_not_stored_in_plain_text(server_env: ServerEnv) -> None:
    env = server_env
    _, _, enrolment = await setup(env)
    stored = str(await env.scalar("SELECT secret FROM ts_mfa_totp"))
    assert enrolment.secret not in stored
    assert stored.startswith("p1:")
    assert "enrolment" not in stored


async def test_regenerated_recovery_codes_replace_the_old_ones(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, enrolment = await setup(env)
    account = await ua.get("/account")
    assert "10 recovery codes left" in account.text
    made = await ua.post(
        "/account/mfa/recovery-codes", data={"csrf_token": csrf(account), "code": "123"}
    )
    assert made.status_code == 401
    made = await ua.post(
        "/account/mfa/recovery-codes",
        data={"csrf_token": csrf(account), "code": enrolment.code(env)},
    )
    assert made.status_code == 200
    fresh = RECOVERY.findall(made.text)
    assert len(fresh) == 10
    assert not set(fresh) & set(enrolment.recovery_codes)
    other = env.browser()
    _, page = await to_second_step(env, other, client, **OIDC)
    old = await submit_code(env, other, page, enrolment.recovery_codes[0], factor="recovery_code")
    assert old.status_code == 401
    new = await submit_code(env, other, page, fresh[0], factor="recovery_code")
    assert new.status_code == 303


async def test_turning_it_off_needs_the_password_and_a_code(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, enrolment = await setup(env)
    token = csrf(await ua.get("/account"))
    for password, code in (
        ("wrong password", enrolment.code(env)),
        (PASSWORD, "000000" if enrolment.code(env) != "000000" else "111111"),
        (PASSWORD, ""),
    ):
        refused = await ua.post(
            "/account/mfa/totp/disable",
            data={"csrf_token": token, "password": password, "code": code},
        )
        assert refused.status_code == 401, refused.text[:300]
    assert await env.count("ts_mfa_totp") == 1
    env.clock.advance(3600)  # past the back-off of the failed attempts
    done = await ua.post(
        "/account/mfa/totp/disable",
        data={"csrf_token": token, "password": PASSWORD, "code": enrolment.code(env)},
    )
    assert done.status_code == 303
    assert await env.count("ts_mfa_totp") == 0
    assert await env.count("ts_mfa_recovery_codes") == 0
    assert "mfa.disabled" in [e[0] for e in await events(env)]
    # and the password alone signs in again
    flow = await env.authorize(env.browser(), client, **OIDC)
    assert flow.response.status_code == 303
    assert "code" in flow.result


async def test_a_single_factor_session_is_stepped_up(server_env: ServerEnv) -> None:
    """A browser signed in with the password before the factor was set up (elsewhere) must
    present the code before its session is used again: for an authorization (with or without
    acr_values) and for the account page."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    old = await signed_in(env, client)
    signed_in_at = int(env.clock())
    env.clock.advance(100)
    enrolment = await enrol(env, await signed_in(env, client))
    assert (await old.get("/account")).status_code == 401
    flow = await env.start_authorize(old, client, acr_values=ACR_MULTI_FACTOR, **OIDC)
    assert flow.location.startswith(env.settings.mfa_path)  # no password asked
    page = await old.get(flow.location)
    assert "password" not in page.text.lower()
    done = await finish(env, old, await submit_code(env, old, page, enrolment.code(env)))
    claims = await verify_id_token(env, client, await tokens(env, client, done, flow))
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR
    assert claims["auth_time"] == signed_in_at  # max_age counts from the password
    assert (await old.get("/account")).status_code == 200


async def test_prompt_none_does_not_step_up(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    old = await signed_in(env, client)
    await enrol(env, await signed_in(env, client))
    flow = await env.start_authorize(old, client, prompt="none", **OIDC)
    assert_redirect_error(
        flow.response,
        "login_required",
        redirect_uri=flow.params["redirect_uri"],
        state=flow.params["state"],
        issuer=env.settings.issuer,
    )


async def test_max_age_still_asks_for_the_password(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, _ = await setup(env)
    env.clock.advance(120)
    flow = await env.start_authorize(ua, client, max_age="60", **OIDC)
    assert flow.location.startswith(env.settings.login_path)
    # within max_age the multi-factor session is used as it is
    again = await env.start_authorize(ua, client, max_age="3600", **OIDC)
    assert again.response.status_code == 302
    assert "code" in again.result


async def test_the_mfa_required_policy(settings: Any, clock: Any) -> None:
    async with ServerEnv.start(settings.model_copy(update={"mfa_required": True}), clock) as env:
        client = await oidc_client(env)
        await env.user()
        # without a factor: refused to the client, but the account page opens to set one up
        ua = env.browser()
        refused = await env.authorize(ua, client, **OIDC)
        assert_redirect_error(
            refused.response,
            "unmet_authentication_requirements",
            redirect_uri=refused.params["redirect_uri"],
            state=refused.params["state"],
            issuer=env.settings.issuer,
            status=303,
        )
        enrolment = await enrol(env, ua)
        flow = await env.authorize(ua, client, **OIDC)  # (consent, never given before)
        assert "code" in flow.result
        other = env.browser()
        _, page = await to_second_step(env, other, client, **OIDC)
        assert (await submit_code(env, other, page, enrolment.code(env))).status_code == 303


async def test_forms_need_the_csrf_token(server_env: ServerEnv) -> None:
    env = server_env
    client, ua, enrolment = await setup(env)
    other = env.browser()
    _, page = await to_second_step(env, other, client, **OIDC)
    fields = hidden_fields(page.text)
    fields.update(factor="totp", code=enrolment.code(env))
    forged = dict(fields, csrf_token="x" * 64)
    assert (await other.post(env.settings.mfa_path, data=forged)).status_code == 403
    cross = await other.post(
        env.settings.mfa_path, data=fields, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    for path in (
        "/account/mfa/totp",
        "/account/mfa/totp/confirm",
        "/account/mfa/totp/disable",
        "/account/mfa/recovery-codes",
    ):
        answer = await ua.post(path, data={"code": enrolment.code(env), "password": PASSWORD})
        assert answer.status_code == 403, path
    assert await env.count("ts_mfa_totp") == 1
    # the code was not spent by the refused posts
    assert (await other.post(env.settings.mfa_path, data=fields)).status_code == 303


async def test_enrolment_needs_a_confirming_code(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    token = csrf(await ua.get("/account"))
    await ua.post("/account/mfa/totp", data={"csrf_token": token, "password": PASSWORD})
    page = await ua.get("/account/mfa/totp")
    match = KEY.search(page.text)
    assert match is not None
    secret = match.group(1)
    wrong = await ua.post("/account/mfa/totp/confirm", data={"csrf_token": token, "code": "12"})
    assert wrong.status_code == 401
    # unconfirmed, it is not a factor: the password alone still signs in
    flow = await env.authorize(env.browser(), client, **OIDC)
    assert "code" in flow.result
    code = pyotp.TOTP(secret.replace(" ", "")).at(int(env.clock()))
    name = env.app.state.runtime.cookies.session_name
    before = ua.cookies[name]
    done = await ua.post("/account/mfa/totp/confirm", data={"csrf_token": token, "code": code})
    assert done.status_code == 200
    assert "mfa.enrolled" in [e[0] for e in await events(env)]
    # a privilege change: the session goes on under a new id, the old one opens nothing (W-30)
    assert ua.cookies[name] != before
    stale = env.browser()
    stale.cookies.set(name, before)
    assert (await stale.get("/account")).status_code == 401
    # a second set-up is refused while one is on
    again = await ua.post("/account/mfa/totp", data={"csrf_token": token, "password": PASSWORD})
    assert again.status_code == 409


async def test_metadata_advertises_the_acr_values(server_env: ServerEnv) -> None:
    doc = (await server_env.http.get("/.well-known/openid-configuration")).json()
    assert doc["acr_values_supported"] == [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR]
    assert "acr" in doc["claims_supported"]


@pytest.mark.parametrize("factor", ["totp", "recovery_code", "passkey", ""])
async def test_an_interaction_without_a_pending_user_has_no_second_step(
    server_env: ServerEnv, factor: str
) -> None:
    """The second step of an interaction nobody passed the password of sends to the login."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client, **OIDC)
    login = await ua.get(flow.location)
    fields = hidden_fields(login.text)
    fields.update(factor=factor, code="123456")
    answer = await ua.post(env.settings.mfa_path, data=fields)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(env.settings.login_path)
    assert not any("session" in name for name in ua.cookies)


async def test_an_operator_can_reset_a_lost_second_factor(server_env: ServerEnv) -> None:
    env = server_env
    client, _, _ = await setup(env)
    assert await env.admin.reset_mfa("alice")
    assert not await env.admin.reset_mfa("alice")
    assert await env.count("ts_mfa_recovery_codes") == 0
    flow = await env.authorize(env.browser(), client, **OIDC)
    assert "code" in flow.result


def test_users_reset_mfa_command(sqlite_url: str) -> None:
    import sqlite3

    cli = Cli(sqlite_url)
    user = cli.json("users", "create", "--username", "alice", "--password", PASSWORD)
    assert "had none" in cli("users", "reset-mfa", "alice").stdout
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as db:
        db.execute(
            "INSERT INTO ts_mfa_totp (user_id, secret, created_at, confirmed_at) "
            "VALUES (?, 'p1:x', 1, 1)",
            (user["id"],),
        )
    assert "turned off" in cli("users", "reset-mfa", "alice").stdout
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as db:
        assert db.execute("SELECT COUNT(*) FROM ts_mfa_totp").fetchone() == (0,)
    cli.refused("users", "reset-mfa", "nobody", match="no user")


async def test_setting_up_an_authenticator_needs_the_password(server_env: ServerEnv) -> None:
    """A password-only session alone (a stolen cookie, an unattended browser) cannot set up an
    authenticator of its own and lock the user out behind it: the set-up needs the current
    password, and wrong passwords are counted (and back off) like wrong codes."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    token = csrf(await ua.get("/account"))
    for password in ("", "wrong password"):
        refused = await ua.post(
            "/account/mfa/totp", data={"csrf_token": token, "password": password}
        )
        assert refused.status_code == 401, refused.text[:300]
        # no key is being set up: the set-up page is not there
        page = await ua.get("/account/mfa/totp")
        assert page.status_code == 303
        assert 'id="totp-key"' not in page.text
    assert await env.count("ts_mfa_totp") == 0
    failed = [e for e in await events(env) if e[0] == "mfa.failed"]
    assert len(failed) == 2
    for _ in range(3):  # the account's free attempts used up, then it backs off
        await ua.post("/account/mfa/totp", data={"csrf_token": token, "password": "wrong"})
    throttled = await ua.post("/account/mfa/totp", data={"csrf_token": token, "password": PASSWORD})
    assert throttled.status_code == 429
    assert await env.count("ts_mfa_totp") == 0
    env.clock.advance(3600)  # past the back-off: the right password sets it up
    await enrol(env, ua)
    assert await env.count("ts_mfa_totp") == 1


async def test_a_password_form_refused_by_a_full_hashing_pool_counts_on_no_throttle(
    server_env: ServerEnv,
) -> None:
    """The authenticator set-up's password check refused by the full hashing pool gets the
    503 page and gives its reserved attempt back: five such refusals do not throttle the
    form (before, each stayed a failure on the second factor's counters, and the right password
    was then refused, throttled)."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    token = csrf(await ua.get("/account"))
    hasher = env.app.state.runtime.server.passwords
    assert hasher._limit is not None
    held = [hasher.admit() for _ in range(hasher._limit)]  # every place taken
    try:
        for _ in range(5):
            busy = await ua.post(
                "/account/mfa/totp", data={"csrf_token": token, "password": PASSWORD}
            )
            assert busy.status_code == 503, busy.status_code
    finally:
        for place in held:
            place.close()
    await enrol(env, ua)  # the right password sets it up: not throttled
    assert await env.count("ts_mfa_totp") == 1
