"""The account page's security forms (issue 18 item 2): sessions with "sign out everywhere",
password change with the current password, account deletion. CSRF, throttling and what each
ends, over HTTP on SQLite and PostgreSQL (and Redis for the short-lived state)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.server.harness import PASSWORD, ServerEnv, hidden_fields
from tests.support.account_pages import change, csrf, signed_in
from tests.support.byo import byo_env
from tests.support.clients import code_refused, refresh, start
from tests.support.mfa import enrol
from tests.support.mfa import signed_in as mfa_signed_in
from tests.support.oidc import oidc_client
from tests.support.password_login import attempt
from tokensmith.core.clock import FakeClock
from tokensmith.core.models import AccountToken, AuthorizationRequest, Interaction
from tokensmith.core.throttle import ACCOUNT
from tokensmith.settings import Settings

NEW_PASSWORD = "a brand new passphrase for alice"


async def events(env: ServerEnv) -> list[tuple[str, str | None]]:
    await env.app.state.runtime.audit.flush()
    async with env.admin.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event, user_id FROM ts_audit_events ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


async def test_password_change_needs_the_current_password_and_ends_other_access(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client, body = await start(env)
    alice = await env.admin.find_user("alice")
    here, elsewhere = await signed_in(env, client), await signed_in(env, client)
    page = (await here.get("/account")).text
    assert "Change your password" in page
    assert page.count("<li>Signed in at") == 3  # start()'s browser, here, elsewhere
    assert "(this browser)" in page

    wrong = await change(here, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert "not correct" in wrong.text
    weak = await change(here, PASSWORD, "short")
    assert weak.status_code == 400
    differ = await change(here, PASSWORD, NEW_PASSWORD, new_password_again=NEW_PASSWORD + "!")
    assert differ.status_code == 400
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 200
    pending = await env.authorize(elsewhere, client)  # a code not yet redeemed

    done = await change(here, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303
    assert "password is changed" in (await here.get(done.headers["location"])).text
    assert (await elsewhere.get("/account")).status_code == 401  # other sessions ended
    assert await code_refused(env, client, pending)  # and the codes issued under the old one
    kept = await env.authorize(here, client)  # this browser's session goes on
    assert (await env.redeem(client, kept.code, kept.verifier)).status_code == 200
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 401
    assert (await attempt(env, env.browser(), client, "alice", NEW_PASSWORD)).status_code == 303
    assert ("password.changed", alice.id) in await events(env)


async def test_password_change_goes_on_under_a_new_session_id(server_env: ServerEnv) -> None:
    """A privilege change rotates the session id (W-30): the id from before the change (say,
    planted or seen by someone) no longer opens the account; the browser goes on with the new."""
    env = server_env
    client, _ = await start(env)
    here = await signed_in(env, client)
    name = env.app.state.runtime.cookies.session_name
    before = here.cookies[name]
    done = await change(here, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303
    after = here.cookies[name]
    assert after != before
    assert (await here.get("/account")).status_code == 200
    stale = env.browser()
    stale.cookies.set(name, before)
    assert (await stale.get("/account")).status_code == 401


async def test_security_forms_need_the_csrf_token(server_env: ServerEnv) -> None:
    env = server_env
    client, _ = await start(env)
    ua = await signed_in(env, client)
    token = await csrf(ua)
    for path, form in (
        ("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("/account/delete", {"current_password": PASSWORD}),
        ("/account/sessions/end", {"confirm": "yes"}),
    ):
        assert (await ua.post(path, data=form)).status_code == 403, path
        cross = await ua.post(
            path, data={**form, "csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403, path
    assert (await ua.get("/account")).status_code == 200
    anonymous = await env.browser().post("/account/sessions/end", data={"csrf_token": token})
    assert anonymous.status_code == 401


async def test_current_password_guesses_are_throttled_like_logins(server_env: ServerEnv) -> None:
    env = server_env
    client, _ = await start(env)
    ua = await signed_in(env, client)
    for _ in range(ACCOUNT.free_attempts):
        assert (await change(ua, "guess", NEW_PASSWORD)).status_code == 400
    locked = await change(ua, PASSWORD, NEW_PASSWORD)  # even the right one waits
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    env.clock.advance(ACCOUNT.base_delay)
    assert (await change(ua, PASSWORD, NEW_PASSWORD)).status_code == 303


async def test_sign_out_everywhere_ends_every_session(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    here, elsewhere = await signed_in(env, client), await signed_in(env, client)
    pending = await env.authorize(elsewhere, client)
    ended = await here.post("/account/sessions/end", data={"csrf_token": await csrf(here)})
    assert ended.status_code == 200
    assert "signed out" in ended.text
    assert (await here.get("/account")).status_code == 401
    assert (await elsewhere.get("/account")).status_code == 401
    assert await env.count("ts_sessions") == 0
    # the grant made in a session ended with it (it had no offline_access), and the code
    # issued in one is no grant to come
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )
    assert await code_refused(env, client, pending)


async def test_deletion_removes_the_user_and_keeps_audit_without_personal_data(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client, body = await start(env)
    alice = await env.admin.find_user("alice")
    ua = await signed_in(env, client)
    refused = await ua.post(
        "/account/delete", data={"csrf_token": await csrf(ua), "current_password": "nope"}
    )
    assert refused.status_code == 400
    assert await env.admin.find_user("alice") is not None
    pending = await env.authorize(await signed_in(env, client), client)
    await leave_traces(env, alice.id)
    deleted = await ua.post(
        "/account/delete", data={"csrf_token": await csrf(ua), "current_password": PASSWORD}
    )
    assert deleted.status_code == 200
    assert "account is deleted" in deleted.text
    assert await env.admin.find_user("alice") is None
    assert await env.count("ts_users") == 0
    assert await env.count("ts_sessions") == 0
    assert await env.count("ts_consents") == 0
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )
    assert await code_refused(env, client, pending)
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 401
    logged = await events(env)
    assert ("account.deleted", alice.id) in logged
    assert await env.scalar(
        "SELECT count(*) FROM ts_audit_events WHERE detail LIKE '%alice%'"
    ) == 0  # fmt: skip
    await assert_forgotten(env, alice.id)


async def leave_traces(env: ServerEnv, user_id: str) -> None:
    """What a user leaves besides their row: a pending link, a sign-in transaction waiting for
    their second factor, an unconfirmed authenticator key, audit events with their address."""
    now = int(env.clock())
    async with env.admin.db.transaction() as stores:
        await stores.account_tokens.create(
            AccountToken("link", "verify_email", "alice@example.com", user_id, now, now + 600)
        )
        await stores.interactions.create(
            Interaction("ts_tx_pending", "browser", SOME_REQUEST, now, now + 600)
        )
        assert await stores.interactions.set_pending("ts_tx_pending", user_id, now, 0)
        assert await stores.totp.begin(user_id, "sealed", now)
    await env.app.state.runtime.audit.flush()
    assert await env.scalar(ADDRESSED, user=user_id) > 0


ADDRESSED = "SELECT count(*) FROM ts_audit_events WHERE user_id = :user AND address IS NOT NULL"


SOME_REQUEST = AuthorizationRequest(
    client_id="app",
    redirect_uri="https://app.test/cb",
    redirect_uri_sent=True,
    scopes=("openid",),
    state="st",
    code_challenge="challenge",
    audience="",
    login_hint="alice@example.com",
)


async def assert_forgotten(env: ServerEnv, user_id: str) -> None:
    """Nothing of the user is left but their audit events, without their address."""
    await env.app.state.runtime.audit.flush()
    for table, column in (
        ("ts_account_tokens", "user_id"),
        ("ts_interactions", "pending_user_id"),
        ("ts_mfa_totp", "user_id"),
        ("ts_sessions", "user_id"),
    ):
        assert await env.scalar(f"SELECT count(*) FROM {table} WHERE {column} = :u", u=user_id) == 0
    assert await env.scalar(ADDRESSED, user=user_id) == 0
    kept = (
        "SELECT count(*) FROM ts_audit_events WHERE user_id = :user AND event = 'login.succeeded'"
    )
    assert await env.scalar(kept, user=user_id) > 0


async def test_users_delete_keeps_the_audit_events_without_personal_data(
    server_env: ServerEnv,
) -> None:
    """The operator's ``users delete`` forgets the user as the account page's deletion does."""
    env = server_env
    client, _ = await start(env)
    alice = await env.admin.find_user("alice")
    await signed_in(env, client)
    await leave_traces(env, alice.id)
    await env.admin.delete_user("alice")
    await assert_forgotten(env, alice.id)


async def test_pages_hide_what_the_accounts_implementation_cannot_do(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    async with byo_env(settings, clock, tmp_path, allow_writes=False) as (env, _):
        client = await env.client(scopes=["openid", "profile", "email"])
        ua = env.browser()
        flow = await env.authorize(ua, client, username="alice@example.com", scope="openid")
        assert flow.response.status_code == 303
        page = await ua.get("/account")
        assert page.status_code == 200
        assert "Sign out everywhere" in page.text
        assert "Change your password" not in page.text
        assert "Delete my account" not in page.text
        token = hidden_fields(page.text)["csrf_token"]
        for path in ("/account/password", "/account/delete"):
            form = {"csrf_token": token, "current_password": PASSWORD, "new_password": "x" * 20}
            assert (await ua.post(path, data=form)).status_code == 403, path


async def test_a_password_only_session_of_a_user_with_a_second_factor_cannot_use_them(
    server_env: ServerEnv,
) -> None:
    """A session that skipped the user's second factor (signed in before it was set up) does
    not change the password, delete the account or end the other sessions."""
    env = server_env
    client = await oidc_client(env)
    await env.user()
    old = await mfa_signed_in(env, client)
    token = await csrf(old)  # the page's token, taken while the session was still enough
    await enrol(env, await mfa_signed_in(env, client))
    for path, form in (
        ("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("/account/delete", {"current_password": PASSWORD}),
        ("/account/sessions/end", {"confirm": "yes"}),
    ):
        refused = await old.post(path, data={**form, "csrf_token": token})
        assert refused.status_code == 401, path
    assert await env.admin.find_user("alice") is not None
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 303
