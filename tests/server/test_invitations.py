"""Sign-up by invitation (issue 18 item 2, ``core.self_service`` invitations): an operator invites
an address through the admin API, the message goes through a real local SMTP server (aiosmtpd),
and its link is followed through the real sign-up page. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.server.harness import ServerEnv, assert_oauth_error, hidden_fields
from tests.support.mail import Inbox, sent, sign_in, with_mail
from tokensmith.admin import Admin, AdminConflict, AdminError
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

NEW_PASSWORD = "tangerine submarine orchestra"
INVALID = "This invitation is not valid any more"
TOKENS: dict[int, str] = {}
"""The admin token of each running server (by the id of its ``ServerEnv``)."""


@pytest.fixture
async def invite_env(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> AsyncIterator[ServerEnv]:
    """The server with sign-up by invitation only, mailing to the local SMTP server."""
    async with ServerEnv.start(with_mail(settings, inbox[1], signup="invite"), clock) as env:
        yield env


async def admin_api(env: ServerEnv, method: str, path: str, body: Any = None) -> httpx.Response:
    """A call of the admin API with a token of an admin client bootstrapped for ``env``."""
    token = TOKENS.get(id(env))
    if token is None:
        admin = await env.admin.bootstrap_admin()
        got = await env.token(admin, {"grant_type": "client_credentials"})
        token = TOKENS[id(env)] = got.json()["access_token"]
    return await env.http.request(
        method, "/admin/v1" + path, json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def invite(env: ServerEnv, box: Inbox, email: str, **extra: Any) -> str:
    """Invite ``email`` through the admin API; the link of the message that arrived."""
    made = await admin_api(env, "POST", "/invitations", {"email": email, **extra})
    assert made.status_code == 201, made.text
    await sent(env)
    return box.link(box.messages[-1])


async def audit_rows(env: ServerEnv) -> list[tuple[str, str]]:
    await env.app.state.runtime.audit.flush()
    async with env.admin.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event, detail FROM ts_audit_events ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


async def test_an_invitation_creates_a_verified_account_at_the_invited_address(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = invite_env, inbox[0]
    made = await admin_api(
        env, "POST", "/invitations", {"email": "Nora@Example.com", "name": "Nora"}
    )
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["email"] == "nora@example.com"
    assert answer["mailed"] is True
    assert answer["link"].startswith("https://as.test/signup?invite=ts_iv_")
    assert answer["expires_at"] - answer["created_at"] == env.settings.invitation_ttl
    await sent(env)
    (message,) = box.to("nora@example.com")
    assert message["Subject"] == "You are invited to create an account"
    assert message.get_body(preferencelist=("html",)) is not None
    assert "7 days" in box.text(message)
    link = box.link(message)
    assert "https://as.test" + link == answer["link"]
    # only the digest is stored
    secret = link.split("invite=", 1)[1]
    stored = await env.scalar("SELECT digest FROM ts_account_tokens WHERE purpose = 'invitation'")
    assert stored != secret
    assert secret not in json.dumps(await env.scalar("SELECT data FROM ts_account_tokens"))
    # opening the link uses nothing: the form, with the invited address fixed
    ua = env.browser()
    page = await ua.get(link)
    assert page.status_code == 200
    assert 'id="invited-email">nora@example.com<' in page.text
    assert 'name="email"' not in page.text
    assert 'value="Nora"' in page.text
    assert await env.count("ts_users") == 0
    # the address is the invitation's, whatever the form says
    fields = {
        **hidden_fields(page.text),
        "email": "mallory@evil.test",
        "name": "Nora",
        "password": NEW_PASSWORD,
    }
    created = await ua.post("/signup", data=fields)
    assert created.status_code == 200
    assert "Your account is ready. Sign in with nora@example.com" in created.text
    user = await env.admin.find_user("nora@example.com")
    assert user is not None
    assert user.email_verified
    assert user.name == "Nora"
    assert await env.admin.find_user("mallory@evil.test") is None
    rows = await audit_rows(env)
    assert ("account.created", '{"invitation":"yes"}') in rows
    assert ("admin.create_invitation", '{"target":"nora@example.com"}') in rows
    # single use: the form again, and the link, are refused with a clear page
    again = await ua.post("/signup", data=fields)
    assert again.status_code == 400
    assert INVALID in again.text
    assert 'name="password"' not in again.text
    reopened = await ua.get(link)
    assert reopened.status_code == 400
    assert INVALID in reopened.text
    assert await env.count("ts_users") == 1
    assert (await sign_in(env, "nora@example.com", NEW_PASSWORD)).status_code == 303


async def test_sign_up_by_invitation_only_says_so_and_refuses_a_public_sign_up(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = invite_env, inbox[0]
    ua = env.browser()
    page = await ua.get("/signup")
    assert page.status_code == 403
    assert "by invitation only" in page.text
    assert 'name="password"' not in page.text
    assert "Create an account" not in (await ua.get("/login?txn=x")).text
    # the public form posted around the page, with a valid CSRF token (from an invitation's
    # page) but no invitation: refused by the core's rule, nothing sent or stored
    link = await invite(env, box, "guest@example.com")
    token = hidden_fields((await ua.get(link)).text)["csrf_token"]
    fields = {"csrf_token": token, "email": "nora@example.com", "password": NEW_PASSWORD}
    refused = await ua.post("/signup", data=fields)
    assert refused.status_code == 403
    assert "by invitation only" in refused.text
    assert 'name="password"' not in refused.text
    await sent(env)
    assert [m["To"] for m in box.messages] == ["guest@example.com"]
    assert await env.count("ts_account_tokens") == 1


async def test_invitations_are_refused_while_sign_up_is_off(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    off = with_mail(settings, inbox[1], signup="off")
    async with ServerEnv.start(off, clock) as env:
        with pytest.raises(AdminError, match="sign-up is off"):
            await env.admin.invite("nora@example.com")
        refused = await admin_api(env, "POST", "/invitations", {"email": "nora@example.com"})
        assert (
            "sign-up is off" in assert_oauth_error(refused, "invalid_request")["error_description"]
        )
        # an invitation made while invitations were accepted does nothing once sign-up is off
        invite_settings = with_mail(settings, inbox[1], signup="invite")
        async with Admin(invite_settings, clock=clock) as other:
            new = await other.invite("nora@example.com")
        ua = env.browser()
        link = new.link.removeprefix("https://as.test")
        assert (await ua.get(link)).status_code == 404
        login = hidden_fields((await ua.get("/login?txn=x")).text)
        posted = await ua.post(
            "/signup", data={**login, "invite": link.split("=", 1)[1], "password": NEW_PASSWORD}
        )
        assert posted.status_code == 404
        assert await env.count("ts_users") == 0


async def test_invitations_expire_are_withdrawn_and_replaced(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = invite_env, inbox[0]
    ua = env.browser()
    # a new invitation to the address withdraws the previous one
    first = await invite(env, box, "nora@example.com")
    second = await invite(env, box, "nora@example.com", name="Nora")
    assert (await ua.get(first)).status_code == 400
    assert (await ua.get(second)).status_code == 200
    listed = await admin_api(env, "GET", "/invitations")
    assert [(i["email"], i["name"]) for i in listed.json()["invitations"]] == [
        ("nora@example.com", "Nora")
    ]
    # withdrawn: the link dies; withdrawing again is 404
    assert (await admin_api(env, "DELETE", "/invitations/nora@example.com")).status_code == 204
    assert (await ua.get(second)).status_code == 400
    again = await admin_api(env, "DELETE", "/invitations/nora@example.com")
    assert_oauth_error(again, "not_found", 404)
    assert (await admin_api(env, "GET", "/invitations")).json() == {"invitations": []}
    # expired: its page and its form refuse it
    short = await invite(env, box, "nora@example.com", ttl=600)
    assert "10 minutes" in box.text(box.messages[-1])
    page = await ua.get(short)
    assert page.status_code == 200
    env.clock.advance(601)
    late = await ua.post("/signup", data={**hidden_fields(page.text), "password": NEW_PASSWORD})
    assert late.status_code == 400
    assert INVALID in late.text
    assert (await ua.get(short)).status_code == 400
    assert await env.admin.list_invitations() == []
    assert await env.count("ts_users") == 0


async def test_two_parallel_submissions_make_one_account(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env = invite_env
    link = await invite(env, inbox[0], "nora@example.com")
    one, two = env.browser(), env.browser()
    forms = []
    for ua in (one, two):
        page = await ua.get(link)
        forms.append({**hidden_fields(page.text), "password": NEW_PASSWORD})
    answers = await asyncio.gather(
        one.post("/signup", data=forms[0]), two.post("/signup", data=forms[1])
    )
    assert sorted(a.status_code for a in answers) == [200, 400]
    assert any("Your account is ready" in a.text for a in answers)
    assert any(INVALID in a.text for a in answers)
    assert await env.count("ts_users") == 1


async def test_an_invitation_passes_the_domains_rule_but_never_makes_a_second_account(
    settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    box = inbox[0]
    corp = with_mail(settings, inbox[1], signup="domains", signup_allowed_domains="corp.test")
    async with ServerEnv.start(corp, clock) as env:
        # the operator chose the address: outside the allowed domains, it is accepted
        link = await invite(env, box, "guest@else.test")
        ua = env.browser()
        page = await ua.get(link)
        done = await ua.post("/signup", data={**hidden_fields(page.text), "password": NEW_PASSWORD})
        assert "Your account is ready" in done.text
        # an address with an account is not invited
        await env.user("alice")
        with pytest.raises(AdminConflict, match="exists already"):
            await env.admin.invite("ALICE@example.com")
        taken = await admin_api(env, "POST", "/invitations", {"email": "alice@example.com"})
        assert_oauth_error(taken, "conflict", 409)
        # an account made for the address after the invitation: the invitation makes no other
        link = await invite(env, box, "bob@example.com")
        page = await ua.get(link)
        await env.user("bob")
        late = await ua.post("/signup", data={**hidden_fields(page.text), "password": NEW_PASSWORD})
        assert "has an account already" in late.text
        assert await env.count("ts_users") == 3
        user = await env.admin.find_user("bob@example.com")
        assert user is not None
        assert user.username == "bob"


async def test_the_invitation_form_keeps_the_password_rules_csrf_and_throttle(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env = invite_env
    link = await invite(env, inbox[0], "nora@example.com")
    ua = env.browser()
    fields = hidden_fields((await ua.get(link)).text)
    weak = await ua.post("/signup", data={**fields, "password": "tangerine"})
    assert weak.status_code == 200
    assert "at least 15 characters" in weak.text
    assert 'id="invited-email">nora@example.com<' in weak.text  # the same form, address fixed
    assert hidden_fields(weak.text)["invite"] == fields["invite"]
    forged = await ua.post("/signup", data={**fields, "csrf_token": "x", "password": NEW_PASSWORD})
    assert forged.status_code == 403
    cross = await ua.post(
        "/signup",
        data={**fields, "password": NEW_PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert await env.count("ts_users") == 0
    # per client address, like the other forms: past its free attempts, 429 before any hash
    statuses = [
        (await ua.post("/signup", data={**fields, "password": "short"})).status_code
        for _ in range(20)
    ]
    assert statuses[-1] == 429
    throttled = await ua.post("/signup", data={**fields, "password": NEW_PASSWORD})
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers
    assert 'id="invited-email">nora@example.com<' in throttled.text
    # the invitation survived all of it
    assert await env.count("ts_users") == 0
    assert (await env.browser().get(link)).status_code == 200


async def test_bad_invitation_links_get_a_clear_page(
    invite_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env = invite_env
    ua = env.browser()
    link = await invite(env, inbox[0], "nora@example.com")
    secret = link.split("invite=", 1)[1]
    for bad in ("", "garbage", "ts_iv_" + "A" * 43, secret[:-1], "ts_pr_" + secret[6:], "x" * 5000):
        page = await ua.get("/signup", params={"invite": bad})
        assert page.status_code == 400, bad
        assert INVALID in page.text
        assert 'name="password"' not in page.text
    fields = hidden_fields((await ua.get(link)).text)
    posted = await ua.post(
        "/signup", data={**fields, "invite": "garbage", "password": NEW_PASSWORD}
    )
    assert posted.status_code == 400
    assert INVALID in posted.text
    # an invitation is not a link of the confirmation page
    confirm = await ua.get("/confirm", params={"token": secret})
    assert confirm.status_code == 400
    assert 'name="token"' not in confirm.text
    assert await env.count("ts_users") == 0
    assert (await ua.get(link)).status_code == 200
    # the admin API checks what it is given
    for body in (
        {},
        {"email": "nora@example.com", "ttl": 10},
        {"email": "nora@example.com", "ttl": 31 * 86400},
        {"email": "nora@example.com", "extra": 1},
    ):
        assert_oauth_error(await admin_api(env, "POST", "/invitations", body), "invalid_request")
    bad = await admin_api(env, "POST", "/invitations", {"email": "not an address"})
    described = assert_oauth_error(bad, "invalid_request")["error_description"]
    assert "not an e-mail address" in described
    await sent(env)
    assert len(inbox[0].messages) == 1
