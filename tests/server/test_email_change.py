"""E-mail change on the account page (issue 18 item 2, ``core.self_service``): the current
password, a link to the new address that works once, before it expires, in its user's browser,
and notices to the old address. Through the real pages, the messages sent over SMTP to a real
local server (aiosmtpd) and their links followed; on SQLite and PostgreSQL (and PostgreSQL +
Redis for the throttling counters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.server.harness import PASSWORD, ServerEnv, hidden_fields
from tests.support.byo import byo_env
from tests.support.mail import Inbox, post_form, sent, with_mail
from tests.support.mfa import enrol
from tests.support.mfa import signed_in as password_only
from tests.support.oidc import login, oidc_client
from tests.support.password_login import attempt
from tokensmith.core.clock import FakeClock
from tokensmith.core.throttle import ACCOUNT, MAIL_ACCOUNT
from tokensmith.settings import Settings

NEW = "alice@new.example"


@pytest.fixture
async def env(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> AsyncIterator[ServerEnv]:
    """A server that mails to the local SMTP server, on SQLite and on PostgreSQL."""
    async with ServerEnv.start(with_mail(settings, inbox[1]), clock) as server:
        yield server


async def signed_in(env: ServerEnv, username: str = "alice") -> httpx.AsyncClient:
    """A browser signed in as ``username`` (created if missing), on the account page."""
    if await env.admin.find_user(username) is None:
        await env.user(username)
    ua = env.browser()
    flow = await env.authorize(ua, await env.client(), username=username)
    assert flow.response.status_code == 303
    return ua


async def ask(
    ua: httpx.AsyncClient, new_email: str = NEW, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    """The account page's e-mail change form, sent with the page's CSRF token."""
    page = await ua.get("/account")
    assert page.status_code == 200, page.text
    form = {"csrf_token": hidden_fields(page.text)["csrf_token"]}
    form.update(new_email=new_email, current_password=password, **extra)
    return await ua.post("/account/email", data=form)


async def email_of(env: ServerEnv, login: str = "alice") -> tuple[str | None, bool]:
    user = await env.admin.find_user(login)
    assert user is not None
    return user.email, user.email_verified


async def events(env: ServerEnv) -> list[str]:
    await env.app.state.runtime.audit.flush()
    async with env.admin.db.engine.connect() as conn:
        result = await conn.execute(text("SELECT event FROM ts_audit_events ORDER BY id"))
        return [r[0] for r in result]


async def test_the_address_changes_only_when_the_link_sent_to_it_is_used(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    box = inbox[0]
    client = await oidc_client(env)
    await env.user("alice", email_verified=True)
    ua = env.browser()
    before = await login(env, client, ua)  # an access token and a session in this browser
    page = await ua.get("/account")
    assert "Change your e-mail address" in page.text

    asked = await ask(ua, "Alice@New.Example")
    assert asked.status_code == 303
    assert "We sent a link to the new address" in (await ua.get(asked.headers["location"])).text
    assert await email_of(env) == ("alice@example.com", True)  # nothing changed yet
    await sent(env)
    (to_new,) = box.to(NEW)
    assert to_new["Subject"] == "Confirm your new e-mail address"
    link = box.link(to_new)
    assert link.startswith("/confirm?token=ts_ce_")
    # the old address is told, and its message has no link that changes anything
    (requested,) = box.to("alice@example.com")
    assert NEW in box.text(requested)
    assert box.link(requested) == "/forgot-password"

    # opening the link (as a mail scanner does) changes nothing; the button does
    confirm = await ua.get(link)
    assert confirm.status_code == 200
    assert confirm.headers["cache-control"] == "no-store"
    assert "Use this address" in confirm.text
    assert await email_of(env) == ("alice@example.com", True)
    done = await ua.post("/confirm", data=hidden_fields(confirm.text))
    assert done.status_code == 200
    assert f"Your address is now {NEW}" in done.text
    assert await email_of(env) == (NEW, True)

    # the old address is told again, with no link at all
    await sent(env)
    changed = box.to("alice@example.com")[-1]
    assert changed["Subject"] == "Your account's e-mail address was changed"
    assert NEW in box.text(changed)
    assert "https://" not in box.text(changed).replace(env.settings.issuer, "")
    # userinfo carries the new address, verified (ID tokens carry no e-mail claims)
    info = await env.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {before['access_token']}"}
    )
    assert (info.json()["email"], info.json()["email_verified"]) == (NEW, True)
    # the link worked once; the new address signs in, the old one does not
    again = await ua.post("/confirm", data=hidden_fields(confirm.text))
    assert again.status_code == 400
    assert "not valid" in again.text
    assert (await attempt(env, env.browser(), client, NEW, PASSWORD)).status_code == 303
    old = await attempt(env, env.browser(), client, "alice@example.com", PASSWORD)
    assert old.status_code == 401
    logged = await events(env)
    assert "email.change_requested" in logged
    assert "email.changed" in logged


async def test_the_form_needs_the_password_the_csrf_token_and_a_valid_new_address(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    ua = await signed_in(env)
    await env.user("bob")
    wrong = await ask(ua, password="not my password")
    assert wrong.status_code == 400
    assert "not correct" in wrong.text
    token = hidden_fields((await ua.get("/account")).text)["csrf_token"]
    form = {"new_email": NEW, "current_password": PASSWORD}
    assert (await ua.post("/account/email", data=form)).status_code == 403
    assert (await ua.post("/account/email", data={**form, "csrf_token": "x"})).status_code == 403
    cross = await ua.post(
        "/account/email",
        data={**form, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    signed_out = await env.browser().post("/account/email", data={**form, "csrf_token": token})
    assert signed_out.status_code == 401
    invalid = await ask(ua, "not an address")
    assert invalid.status_code == 400
    assert "valid e-mail address" in invalid.text
    same = await ask(ua, "ALICE@example.com")
    assert same.status_code == 400
    assert "your address already" in same.text
    await sent(env)
    assert inbox[0].messages == []
    assert await env.count("ts_account_tokens") == 0
    assert await email_of(env) == ("alice@example.com", False)


async def test_current_password_guesses_are_throttled_like_logins(env: ServerEnv) -> None:
    ua = await signed_in(env)
    for _ in range(ACCOUNT.free_attempts):
        assert (await ask(ua, password="guess")).status_code == 400
    locked = await ask(ua)  # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    env.clock.advance(ACCOUNT.base_delay)
    assert (await ask(ua)).status_code == 303


async def test_requests_are_throttled_per_account_and_per_new_mailbox(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    ua = await signed_in(env)
    answers = [await ask(ua, f"a{i}@new.example") for i in range(MAIL_ACCOUNT.free_attempts + 1)]
    assert [a.status_code for a in answers[:-1]] == [303] * MAIL_ACCOUNT.free_attempts
    assert answers[-1].status_code == 429
    assert "Retry-After" in answers[-1].headers
    # the new address's budget is the one sign-up and reset use for it: a mailbox flooded by
    # one form is not flooded further through this one
    other = await signed_in(env, "bob")
    for _ in range(MAIL_ACCOUNT.free_attempts):
        fields = hidden_fields((await other.get("/forgot-password")).text)
        await other.post("/forgot-password", data={**fields, "login": "victim@new.example"})
    flooded = await ask(other, "victim@new.example")
    assert flooded.status_code == 429
    await sent(env)
    assert box.to("victim@new.example") == []
    links = [m for m in box.messages if m["Subject"] == "Confirm your new e-mail address"]
    assert len(links) == MAIL_ACCOUNT.free_attempts


async def test_an_address_with_an_account_gets_a_message_instead_of_a_link(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """No enumeration: the requester sees the same answer whether the new address has an
    account; that address's owner is told, and no link exists."""
    box = inbox[0]
    await env.user("bob", email="bob@example.com")
    ua = await signed_in(env)
    taken = await ask(ua, "bob@example.com")
    free = await ask(ua, NEW)
    assert taken.status_code == free.status_code == 303
    assert taken.headers["location"] == free.headers["location"]
    await sent(env)
    (to_bob,) = box.to("bob@example.com")
    assert "already" in box.text(to_bob)
    assert box.link(to_bob) == "/forgot-password"
    assert await env.count("ts_account_tokens") == 1  # the link to the free address only
    assert len(box.to("alice@example.com")) == 2  # the old address is told either way
    assert await email_of(env, "bob") == ("bob@example.com", False)


async def test_the_link_expires_and_a_new_request_or_a_password_change_voids_it(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    box = inbox[0]
    ua = await signed_in(env)

    new_password = "a brand new passphrase for alice"

    async def link_for(address: str, password: str = PASSWORD) -> str:
        assert (await ask(ua, address, password)).status_code == 303
        await sent(env)
        return box.link(box.to(address)[-1])

    expiring = await link_for("late@new.example")
    page = await ua.get(expiring)
    env.clock.advance(env.settings.email_change_ttl + 1)
    late = await ua.post("/confirm", data=hidden_fields(page.text))
    assert late.status_code == 400
    assert "not valid" in late.text

    first = await link_for("first@new.example")
    second = await link_for("second@new.example")
    assert (await ua.get(first)).status_code == 400  # the newer request voided it
    first_page = await ua.get(second)
    assert first_page.status_code == 200
    # a password change (someone else knew the password?) cancels the pending change
    fields = hidden_fields((await ua.get("/account")).text)
    changed = await ua.post(
        "/account/password",
        data={
            **fields,
            "current_password": PASSWORD,
            "new_password": new_password,
            "new_password_again": new_password,
        },
    )
    assert changed.status_code == 303
    cancelled = await ua.post("/confirm", data=hidden_fields(first_page.text))
    assert cancelled.status_code == 400
    # and so does a reset by the forgotten-password link (sent to the old address)
    env.clock.advance(MAIL_ACCOUNT.base_delay)  # past the mail counters' back-off
    pending = await ua.get(await link_for("third@new.example", new_password))
    assert pending.status_code == 200
    await post_form(env.browser(), "/forgot-password", login="alice")
    await sent(env)
    reset = await ua.get(box.link(box.to("alice@example.com")[-1]))
    fields = {**hidden_fields(reset.text), "password": "yet another passphrase for alice"}
    assert (await ua.post("/reset-password", data=fields)).status_code == 200
    # (the reset also ended this session: a live link would answer 403 here, not 400)
    assert (await ua.post("/confirm", data=hidden_fields(pending.text))).status_code == 400
    assert await email_of(env) == ("alice@example.com", True)  # the reset link verified it


async def test_the_link_works_only_in_a_browser_signed_in_as_its_user(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """Whoever reads the new mailbox (a mistyped address's owner) cannot take the account:
    the link needs the user's session, and a wrong browser does not use it up."""
    box = inbox[0]
    ua = await signed_in(env)
    assert (await ask(ua)).status_code == 303
    await sent(env)
    link = box.link(box.to(NEW)[0])
    bob = await signed_in(env, "bob")
    for stranger in (env.browser(), bob):
        page = await stranger.get(link)
        assert page.status_code == 403
        assert "signed in" in page.text
        assert "Use this address" not in page.text
    # bob's own link gives his browser the confirm form's CSRF token; alice's link stays hers
    assert (await ask(bob, "bob@new.example")).status_code == 303
    await sent(env)
    fields = hidden_fields((await bob.get(box.link(box.to("bob@new.example")[0]))).text)
    refused = await bob.post("/confirm", data={**fields, "token": link.split("=", 1)[1]})
    assert refused.status_code == 403
    assert await email_of(env) == ("alice@example.com", False)
    confirm = await ua.get(link)
    done = await ua.post("/confirm", data=hidden_fields(confirm.text))
    assert done.status_code == 200
    assert await email_of(env) == (NEW, True)


async def test_a_password_only_session_of_a_user_with_a_second_factor_cannot_use_the_link(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """A session that skipped the user's second factor (begun before it was set up) neither
    asks for a change nor uses a link: the account page's own rule."""
    box = inbox[0]
    client = await oidc_client(env)
    await env.user()
    old = await password_only(env, client)
    assert (await ask(old)).status_code == 303  # asked while the password was all there was
    await sent(env)
    link = box.link(box.to(NEW)[0])
    token = hidden_fields((await old.get("/account")).text)["csrf_token"]
    await enrol(env, await password_only(env, client))
    page = await old.get(link)
    assert page.status_code == 403
    assert "Use this address" not in page.text
    form = {"csrf_token": token, "new_email": "other@new.example", "current_password": PASSWORD}
    assert (await old.post("/account/email", data=form)).status_code == 401
    assert await email_of(env) == ("alice@example.com", False)


async def test_an_address_taken_meanwhile_is_refused_and_nothing_is_kept(
    env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """The new address became another account's between the request and the link: the users
    table's unique constraint refuses it; a clear page, not a 500, and the whole change rolled
    back (the link is not even used)."""
    box = inbox[0]
    ua = await signed_in(env)
    assert (await ask(ua)).status_code == 303
    await sent(env)
    link = box.link(box.to(NEW)[0])
    confirm = await ua.get(link)
    await env.user("bob", email=NEW)  # meanwhile, an administrator gives bob the address
    refused = await ua.post("/confirm", data=hidden_fields(confirm.text))
    assert refused.status_code == 409
    assert "belongs to another account" in refused.text
    assert await email_of(env) == ("alice@example.com", False)
    assert await email_of(env, "bob") == (NEW, False)
    assert await env.scalar("SELECT count(*) FROM ts_account_tokens WHERE used_at IS NULL") == 1
    assert "email.changed" not in await events(env)
    await sent(env)
    assert len(box.to("alice@example.com")) == 1  # the request's notice only


async def test_the_form_is_hidden_and_refused_when_the_address_cannot_change(
    settings: Settings, clock: FakeClock, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    """An application's own accounts without ``UPDATE_EMAIL`` (here: only password writes), and
    an operator who turned the feature off."""
    mailing = with_mail(settings, inbox[1], signup="off")
    async with byo_env(mailing, clock, tmp_path, allow_writes=True) as (env, _):
        ua = env.browser()
        flow = await env.authorize(ua, await env.client(), username="alice@example.com")
        assert flow.response.status_code == 303
        page = await ua.get("/account")
        assert "Change your password" in page.text
        assert "Change your e-mail address" not in page.text
        refused = await ask(ua)
        assert refused.status_code == 403
        assert "cannot be changed here" in refused.text
        await sent(env)
    off = with_mail(settings, inbox[1], email_change=False)
    async with ServerEnv.start(off, clock) as env:
        ua = await signed_in(env)
        assert "Change your e-mail address" not in (await ua.get("/account")).text
        assert (await ask(ua)).status_code == 403
        await sent(env)
    assert inbox[0].messages == []
