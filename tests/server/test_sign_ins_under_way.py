"""Red team: a sign-in under way when its account changes. Someone passed the password step (the
password was right then) and has still to present the second factor when the password is reset
(by link), changed (on the account page) or set by the operator, or the account's access is
ended: that is how a user locks out an intruder who knows the old password. The second step must
then make no session and get no code; the browser is sent back to the login page, saying why,
and nothing of the refused step is kept (the code or passkey it presented is not used up).

The races are run for real, each transaction on its own connection: a reset committing while the
sign-in's last step runs (that step waits for it, then refuses), and a reset arriving while the
sign-in holds the user's security stamp (the reset waits, then ends the session and the code made
there). On SQLite, PostgreSQL and PostgreSQL + Redis (where the sign-in transactions and codes
live in Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
import pytest

from tests.server.harness import PASSWORD, Flow, ServerEnv, hidden_fields
from tests.support.account_pages import change
from tests.support.audit import events
from tests.support.authenticator import SoftAuthenticator
from tests.support.clients import code_refused
from tests.support.mail import Inbox, post_form, sent
from tests.support.mfa import (
    OIDC,
    ORIGIN,
    RP_ID,
    Enrolment,
    enrol,
    finish,
    register_passkey,
    signed_in,
    submit_code,
    to_second_step,
    tokens,
)
from tests.support.oidc import oidc_client
from tests.support.password_login import attempt
from tokensmith.admin import Admin
from tokensmith.core.accounts import end_access
from tokensmith.core.registration import NewClient
from tokensmith.storage.sqlalchemy.account_tokens import SqlAccountTokenStore
from tokensmith.storage.sqlalchemy.sessions import SqlSessionStore

NEW_PASSWORD = "a fresh passphrase for alice"
CHANGED = "changed while you were signing in"
"""The login page's words for a sign-in refused because the account changed."""
LET_IT_RUN = 0.3
"""How long the other transaction is given to run ahead where nothing tells when it waits (only
to expose a missing lock: the assertions hold whatever the timing when the lock is there)."""


async def enrolled(env: ServerEnv) -> tuple[NewClient, httpx.AsyncClient, Enrolment]:
    """alice with an authenticator, set up in browser ``owner`` (a multi-factor session)."""
    client = await oidc_client(env)
    await env.user()
    owner = await signed_in(env, client)
    return client, owner, await enrol(env, owner)


async def reset_by_link(env: ServerEnv, box: Inbox) -> None:
    """The forgotten-password form, the link from the mail, the new password."""
    ua = env.browser()
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    page = await ua.get(box.link(box.messages[-1]))
    done = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert "password is changed" in done.text


async def change_on_the_account_page(owner: httpx.AsyncClient) -> None:
    done = await change(owner, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303, done.text[:300]


Event = Callable[[ServerEnv, Inbox, httpx.AsyncClient], Awaitable[object]]
EVENTS: dict[str, tuple[Event, str]] = {
    # what happens, and alice's password afterwards
    "reset link": (lambda env, box, owner: reset_by_link(env, box), NEW_PASSWORD),
    "account page": (lambda env, box, owner: change_on_the_account_page(owner), NEW_PASSWORD),
    "users set-password": (
        lambda env, box, owner: env.admin.set_password("alice", NEW_PASSWORD),
        NEW_PASSWORD,
    ),
    "users revoke": (lambda env, box, owner: env.admin.revoke_user("alice"), PASSWORD),
}


def assert_back_at_the_login_page(response: httpx.Response, txn: str) -> None:
    """The sign-in's login page (this interaction), saying why: no session cookie, no redirect
    (so no code)."""
    assert response.status_code == 401, (response.status_code, response.text[:500])
    assert CHANGED in response.text
    assert "Sign in again." in response.text
    fields = hidden_fields(response.text)
    assert fields["txn"] == txn
    assert 'name="password"' in response.text
    assert "location" not in response.headers
    assert not any("session" in c for c in response.headers.get_list("set-cookie"))


async def sign_in_again(
    env: ServerEnv, ua: httpx.AsyncClient, refused: httpx.Response, password: str
) -> httpx.Response:
    """Post the login page the refusal showed: on to the second step again."""
    fields = hidden_fields(refused.text)
    fields.update(username="alice", password=password)
    response = await ua.post(env.settings.login_path, data=fields)
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"].startswith(env.settings.mfa_path)
    page = await ua.get(response.headers["location"])
    assert page.status_code == 200, page.text[:300]
    return page


async def failures_for_changed_accounts(env: ServerEnv) -> int:
    await env.app.state.runtime.audit.flush()
    return int(
        await env.scalar(
            "SELECT count(*) FROM ts_audit_events WHERE event = 'login.failed' "
            "AND detail LIKE '%account_changed%'"
        )
    )


@pytest.mark.parametrize("event", list(EVENTS))
async def test_the_totp_step_after_the_account_changed_is_refused(
    mail_env: ServerEnv, inbox: tuple[Inbox, int], event: str
) -> None:
    env, box = mail_env, inbox[0]
    client, owner, enrolment = await enrolled(env)
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    txn = hidden_fields(page.text)["txn"]
    code = enrolment.code(env)
    happen, password = EVENTS[event]
    await happen(env, box, owner)
    sessions = await env.count("ts_sessions")
    codes = await env.count("ts_authorization_codes")

    refused = await submit_code(env, ua, page, code)
    assert_back_at_the_login_page(refused, txn)
    assert await env.count("ts_sessions") == sessions
    assert await env.count("ts_authorization_codes") == codes
    assert await failures_for_changed_accounts(env) == 1
    # the second step's page sends them to the login page too
    assert_back_at_the_login_page(await ua.get(f"{env.settings.mfa_path}?txn={txn}"), txn)
    assert await env.count("ts_sessions") == sessions

    # signing in again (the same sign-in) works, with the same code: nothing was used up
    page = await sign_in_again(env, ua, refused, password)
    done = await finish(env, ua, await submit_code(env, ua, page, code))
    assert (await tokens(env, client, done, flow))["access_token"]


async def test_a_recovery_code_after_a_reset_is_refused_and_not_used_up(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    client, _, enrolment = await enrolled(env)
    recovery = enrolment.recovery_codes[0]
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    await reset_by_link(env, box)
    refused = await submit_code(env, ua, page, recovery, factor="recovery_code")
    assert_back_at_the_login_page(refused, hidden_fields(page.text)["txn"])
    assert "mfa.recovery_code_used" not in [e[0] for e in await events(env)]
    # the old password alone gets nowhere; the new one and the same recovery code do
    wrong = hidden_fields(refused.text)
    wrong.update(username="alice", password=PASSWORD)
    assert (await ua.post(env.settings.login_path, data=wrong)).status_code == 401
    page = await sign_in_again(env, ua, refused, NEW_PASSWORD)
    used = await submit_code(env, ua, page, recovery, factor="recovery_code")
    assert (await tokens(env, client, await finish(env, ua, used), flow))["access_token"]


async def passkey_options(ua: httpx.AsyncClient, env: ServerEnv, page: httpx.Response) -> Any:
    fields = hidden_fields(page.text)
    return await ua.post(
        env.settings.mfa_path + "/passkey-options",
        data={"txn": fields["txn"], "csrf_token": fields["csrf_token"]},
    )


async def test_a_passkey_second_step_after_the_password_was_set_is_refused(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    auth = SoftAuthenticator(RP_ID, ORIGIN)
    registered = await register_passkey(env, await signed_in(env, client), auth)
    assert registered.status_code == 303, registered.text[:300]
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    options = await passkey_options(ua, env, page)
    assert options.status_code == 200
    assertion = auth.get(options.json())
    await env.admin.set_password("alice", NEW_PASSWORD)  # the operator, for the user

    # no new challenge, and the one asked for before does not sign in
    assert (await passkey_options(ua, env, page)).status_code == 404
    refused = await submit_code(env, ua, page, assertion, factor="passkey")
    assert_back_at_the_login_page(refused, hidden_fields(page.text)["txn"])
    assert await env.scalar("SELECT last_used_at FROM ts_passkeys") is None  # not used
    page = await sign_in_again(env, ua, refused, NEW_PASSWORD)
    options = await passkey_options(ua, env, page)
    done = await submit_code(env, ua, page, auth.get(options.json()), factor="passkey")
    assert (await tokens(env, client, await finish(env, ua, done), flow))["access_token"]


# -- the races ------------------------------------------------------------------------------


LOCK_WAITS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def waits_for_a_lock(env: ServerEnv, task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` comes to wait for a lock (PostgreSQL: a session of the test's database
    waiting on one) before it is done. On SQLite the whole transaction waits for the writer
    before it begins: whether it is still waiting after ``LET_IT_RUN``."""
    if env.admin.db.engine.dialect.name != "postgresql":
        await asyncio.sleep(LET_IT_RUN)
        return not task.done()
    for _ in range(200):
        if task.done():
            return False
        if await env.scalar(LOCK_WAITS):
            return True
        await asyncio.sleep(0.05)
    return False


async def during_a_reset(
    env: ServerEnv, request: Coroutine[Any, Any, httpx.Response]
) -> tuple[httpx.Response, bool]:
    """Send ``request`` while a reset is written but not committed (what ``users
    set-password`` writes: the new hash, then ``end_access``: the stamp renewed, the sessions
    ended, the grants revoked); commit the reset once the request waits for it. The answer,
    and whether the request did wait for the reset."""
    alice = await env.admin.find_user("alice")
    assert alice is not None
    new_hash = env.admin.passwords().hash(NEW_PASSWORD)
    async with env.admin.db.transaction() as stores:
        now = int(env.clock())
        assert await stores.users.set_password_hash(alice.id, new_hash, now)
        await end_access(stores, alice.id, now)
        sent = asyncio.create_task(request)
        waited = await waits_for_a_lock(env, sent)
    return await sent, waited


async def test_a_reset_committing_during_the_second_step_makes_it_wait_then_refuse(
    mail_env: ServerEnv,
) -> None:
    """The reset has renewed the stamp but not committed when the code is submitted: the step
    checks the code, then waits for the reset (on PostgreSQL for the stamp's lock, on SQLite for
    the write lock) and refuses, rolling back the code's use."""
    env = mail_env
    client, _, enrolment = await enrolled(env)
    ua = env.browser()
    flow, page = await to_second_step(env, ua, client, **OIDC)
    code = enrolment.code(env)
    sessions = await env.count("ts_sessions")
    refused, waited = await during_a_reset(env, submit_code(env, ua, page, code))
    assert waited  # for the reset
    assert_back_at_the_login_page(refused, hidden_fields(page.text)["txn"])
    assert await env.count("ts_sessions") == sessions - 1  # the owner's, ended by the reset
    page = await sign_in_again(env, ua, refused, NEW_PASSWORD)
    done = await finish(env, ua, await submit_code(env, ua, page, code))  # not used up
    assert (await tokens(env, client, done, flow))["access_token"]


@pytest.mark.parametrize("hash_", ["current", "outdated"])
async def test_a_reset_committing_during_a_password_login_makes_it_wait_then_refuse(
    server_env: ServerEnv, hash_: str
) -> None:
    """Without a second factor: the reset is under way when the password (the old one) is
    posted. On PostgreSQL the login reads the old hash and stamp, checks the password, then
    waits for the reset where it would make its session, and refuses; on SQLite it waits for
    the reset before it reads anything, and the old password is simply wrong. With an outdated
    hash the login upgrades it, waiting for the reset's write of the user: the refusal rolls
    that upgrade back, so the old password does not come back over the new one."""
    env = server_env
    client = await env.client(first_party=True)
    if hash_ == "current":
        await env.user()
    else:
        stronger = env.settings.model_copy(update={"password_hash_time_cost": 2})
        async with Admin(stronger, clock=env.clock) as admin:  # re-hashed at login
            await admin.create_user(username="alice", password=PASSWORD, email="a@example.com")
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    login = await ua.get(flow.location)
    fields = {**hidden_fields(login.text), "username": "alice", "password": PASSWORD}
    refused, waited = await during_a_reset(env, ua.post(env.settings.login_path, data=fields))
    assert waited
    if env.admin.db.engine.dialect.name == "postgresql":
        assert_back_at_the_login_page(refused, fields["txn"])
    else:
        assert refused.status_code == 401
        assert "not correct" in refused.text
    assert await env.count("ts_sessions") == 0
    assert await env.count("ts_authorization_codes") == 0
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 401
    assert (await attempt(env, env.browser(), client, "alice", NEW_PASSWORD)).status_code == 303


class SessionWritePause:
    """Holds the sign-in's session write until ``go``: by then the sign-in holds the user's
    security stamp (``interaction._signed_in``), and the test runs a reset meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        create = SqlSessionStore.create

        async def paused(store: SqlSessionStore, session: Any) -> None:
            self.reached.set()
            await asyncio.wait_for(self.go.wait(), 10)
            await create(store, session)

        monkeypatch.setattr(SqlSessionStore, "create", paused)


@pytest.mark.parametrize("how", ["password", "second step", "passkey"])
async def test_a_reset_during_the_last_step_waits_then_ends_its_session_and_code(
    mail_env: ServerEnv, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The other order: the sign-in holds the stamp when the reset (``users set-password``)
    starts; the reset waits for it, then ends the session made there, and the code issued
    there gets no tokens. With a password alone, with a second step, with a passkey alone."""
    env = mail_env
    client = await oidc_client(env, first_party=True)  # no consent: the code comes at once
    await env.user()
    ua = env.browser()
    if how == "password":
        flow = await env.start_authorize(ua, client)
        login = await ua.get(flow.location)
        fields = {**hidden_fields(login.text), "username": "alice", "password": PASSWORD}
        pause = SessionWritePause(monkeypatch)
        last = asyncio.create_task(ua.post(env.settings.login_path, data=fields))
    elif how == "second step":
        enrolment = await enrol(env, await signed_in(env, client))
        flow, page = await to_second_step(env, ua, client)
        pause = SessionWritePause(monkeypatch)
        last = asyncio.create_task(submit_code(env, ua, page, enrolment.code(env)))
    else:
        auth = SoftAuthenticator(RP_ID, ORIGIN)
        assert (await register_passkey(env, await signed_in(env, client), auth)).status_code == 303
        flow = await env.start_authorize(ua, client)
        login = await ua.get(flow.location)
        fields = {k: hidden_fields(login.text)[k] for k in ("txn", "csrf_token")}
        options = await ua.post(env.settings.login_path + "/passkey/options", data=fields)
        credential = auth.get(options.json())
        pause = SessionWritePause(monkeypatch)
        last = asyncio.create_task(
            ua.post(env.settings.login_path + "/passkey", data={**fields, "credential": credential})
        )
    try:
        await asyncio.wait_for(pause.reached.wait(), 10)
        reset = asyncio.create_task(env.admin.set_password("alice", NEW_PASSWORD))
        waited = await waits_for_a_lock(env, reset)
    finally:
        pause.go.set()
    done = await last
    await reset
    assert waited  # the reset waited for the sign-in
    assert done.status_code == 303, done.text[:300]
    assert done.headers["location"].startswith(client.client.redirect_uris[0])
    # the session made there was ended by the reset, and its code gets no tokens
    assert await env.count("ts_sessions") == 0
    assert (await ua.get(env.settings.account_path)).status_code == 401
    assert await code_refused(env, client, Flow(done, flow.params, flow.verifier))


async def test_a_session_stepped_up_while_a_reset_ends_it_is_refused(mail_env: ServerEnv) -> None:
    """A single-factor session (signed in before the authenticator was set up elsewhere) being
    stepped up while a reset ends it: the step waits for the reset, finds the session gone and
    makes no new one."""
    env = mail_env
    client = await oidc_client(env)
    await env.user()
    old = await signed_in(env, client)
    enrolment = await enrol(env, await signed_in(env, client))
    flow = await env.start_authorize(old, client, **OIDC)
    assert flow.location.startswith(env.settings.mfa_path)  # no password asked
    page = await old.get(flow.location)
    refused, waited = await during_a_reset(env, submit_code(env, old, page, enrolment.code(env)))
    assert waited
    if refused.status_code == 401:  # PostgreSQL: it had read the session before the reset
        assert_back_at_the_login_page(refused, hidden_fields(page.text)["txn"])
    else:  # SQLite: it waited before reading anything, and had no session to step up
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(env.settings.login_path)
    assert await env.count("ts_sessions") == 0


async def test_a_login_and_a_reset_by_link_at_once_never_deadlock(
    mail_env: ServerEnv, inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset by link clears the account's login back-off, a row a concluding login clears
    too, before it holds the stamp. The reset clears it first, before it writes the user and
    the stamp (the login's order): the reset, held just after it renewed the stamp, and a
    login with the old password sent then wait for one another at most one way. (Cleared last,
    as it was, the login held that row waiting for the stamp while the reset waited for the
    row: PostgreSQL's deadlock detector failed one of them.)"""
    env, box = mail_env, inbox[0]
    client = await env.client(first_party=True)
    await env.user()
    # a failed attempt: the account's back-off counter has a row to lock
    ua = env.browser()
    assert (await attempt(env, ua, client, "alice", "not the password")).status_code == 401
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    page = await ua.get(box.link(box.messages[-1]))
    form = {**hidden_fields(page.text), "password": NEW_PASSWORD}
    reached, go = asyncio.Event(), asyncio.Event()
    revoke = SqlAccountTokenStore.revoke_for_user

    async def held(store: SqlAccountTokenStore, user_id: str, purpose: str, now: int) -> int:
        reached.set()  # the reset has renewed the stamp and ended the sessions: hold it here
        await asyncio.wait_for(go.wait(), 10)
        return await revoke(store, user_id, purpose, now)

    monkeypatch.setattr(SqlAccountTokenStore, "revoke_for_user", held)
    reset = asyncio.create_task(ua.post("/reset-password", data=form))
    try:
        await asyncio.wait_for(reached.wait(), 10)
        login = asyncio.create_task(attempt(env, env.browser(), client, "alice", PASSWORD))
        waited = await waits_for_a_lock(env, login)
    finally:
        go.set()
    done, refused = await reset, await login
    assert waited  # the login waited for the reset (on the back-off row, or on the stamp)
    assert done.status_code == 200, done.text[:300]
    assert "password is changed" in done.text
    assert refused.status_code == 401, refused.text[:300]
    assert await env.count("ts_sessions") == 0
    assert (await attempt(env, env.browser(), client, "alice", NEW_PASSWORD)).status_code == 303
