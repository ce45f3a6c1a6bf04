"""Self-service accounts by e-mail (``core.self_service``, issue 18 items 2, 3, 5), through the
real pages, with the messages sent over SMTP to a real local server (aiosmtpd) and their links
followed. On SQLite, PostgreSQL, and PostgreSQL + Redis (the throttling counters)."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.live import free_port
from tests.server.harness import PASSWORD, ServerEnv, hidden_fields
from tests.support.clients import refresh, start
from tests.support.mail import MAIL, Inbox, post_form, runtime, sent, sign_in, with_mail
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

NEW_PASSWORD = "tangerine submarine orchestra"


async def test_sign_up_sends_a_link_that_creates_a_verified_account(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    ua = env.browser()
    done = await post_form(
        ua, "/signup", email="Nora@Example.com", name="Nora", password=NEW_PASSWORD
    )
    assert done.status_code == 200
    assert "Check your mailbox" in done.text
    assert await env.count("ts_users") == 0  # nothing exists before the link is followed
    await sent(env)
    (message,) = box.to("nora@example.com")
    assert message["From"] == "CloudDocs accounts <accounts@as.test>"
    assert message.get_body(preferencelist=("html",)) is not None
    link = box.link(message)
    assert link.startswith("/confirm?token=ts_su_")
    # opening the link uses nothing (mail scanners fetch links): the button does
    page = await ua.get(link)
    assert page.status_code == 200
    assert "nora@example.com" in page.text
    assert await env.count("ts_users") == 0
    created = await ua.post("/confirm", data=hidden_fields(page.text))
    assert created.status_code == 200
    assert "Your account is ready" in created.text
    user = await env.admin.find_user("nora@example.com")
    assert user is not None
    assert user.email_verified
    assert user.name == "Nora"
    # the link is single-use
    again = await ua.post("/confirm", data=hidden_fields(page.text))
    assert again.status_code == 400
    assert "not valid" in again.text
    assert await env.count("ts_users") == 1
    # and the account signs in with its address
    signed_in = await sign_in(env, "nora@example.com", NEW_PASSWORD)
    assert signed_in.status_code == 303
    assert "code=" in signed_in.headers["location"]


async def test_sign_up_answers_the_same_for_an_address_that_has_an_account(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    await env.user("alice")
    ua = env.browser()
    existing = await post_form(ua, "/signup", email="alice@example.com", password=NEW_PASSWORD)
    unknown = await post_form(ua, "/signup", email="zoe@example.com", password=NEW_PASSWORD)
    assert existing.status_code == unknown.status_code == 200
    assert existing.text.replace("alice@", "X@") == unknown.text.replace("zoe@", "X@")
    await sent(env)
    (to_alice,) = box.to("alice@example.com")
    assert "already has one" in box.text(to_alice)
    assert box.link(to_alice) == "/forgot-password"
    assert await env.count("ts_account_tokens") == 1  # only zoe's pending registration


async def test_sign_up_keeps_the_password_rules_and_the_operators_domains(
    database_url: str, settings: Settings, clock: FakeClock, inbox: tuple[Inbox, int]
) -> None:
    limited = with_mail(settings, inbox[1], signup="domains", signup_allowed_domains="corp.test")
    async with ServerEnv.start(limited, clock) as env:
        ua = env.browser()
        short = await post_form(ua, "/signup", email="a@corp.test", password="tangerine")
        assert short.status_code == 200
        assert "at least 15 characters" in short.text
        common = await post_form(
            ua, "/signup", email="a@corp.test", password="1q2w3e4r5t6y7u8i9o0p"
        )
        assert "commonly used or breached" in common.text
        same = await post_form(ua, "/signup", email="abcdefghijklmno@corp.test", password="")
        assert "at least 15" in same.text
        other = await post_form(ua, "/signup", email="a@else.test", password=NEW_PASSWORD)
        assert other.status_code == 403
        assert "corp.test only" in other.text
        await runtime(env).mailer.drain()
        assert inbox[0].messages == []
        assert await env.count("ts_account_tokens") == 0


async def test_the_pages_are_off_unless_the_operator_switches_them_on(
    server_env: ServerEnv,
) -> None:
    ua = server_env.browser()
    for path in ("/signup", "/forgot-password", "/dev/outbox"):
        assert (await ua.get(path)).status_code == 404, path
    login = await ua.get("/login?txn=x")
    assert "Forgot your password" not in login.text


async def test_forgotten_password_answers_the_same_and_resets_everything(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    client, body = await start(env)  # alice, with a refresh token and a session
    assert await env.count("ts_consents") > 0
    ua = env.browser()
    known = await post_form(ua, "/forgot-password", login="ALICE@example.com")
    unknown = await post_form(ua, "/forgot-password", login="nobody@example.com")
    by_name = await post_form(ua, "/forgot-password", login="nobody")
    assert known.status_code == unknown.status_code == by_name.status_code == 200
    assert known.text == unknown.text == by_name.text
    await sent(env)
    assert [m["To"] for m in box.messages] == ["alice@example.com"]
    link = box.link(box.messages[0])
    assert link.startswith("/reset-password?token=ts_pr_")
    # a second request makes the first link useless
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    assert (await ua.get(link)).status_code == 400
    link = box.link(box.messages[-1])
    page = await ua.get(link)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    weak = await ua.post("/reset-password", data={**hidden_fields(page.text), "password": "alice"})
    assert "at least 15" in weak.text
    done = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert done.status_code == 200
    assert "password is changed" in done.text
    # every grant and session of alice ended; the old password no longer works
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )
    assert await env.count("ts_sessions") == 0
    assert await env.count("ts_consents") == 0  # each application is to be allowed again
    assert (await sign_in(env, "alice", PASSWORD)).status_code == 401  # the form again
    assert (await sign_in(env, "alice", NEW_PASSWORD)).status_code == 303
    # the link worked once
    reused = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": "x" + NEW_PASSWORD}
    )
    assert reused.status_code == 400
    assert "not valid" in reused.text
    await sent(env)
    assert "was just changed" in box.text(box.messages[-1])


async def test_reset_links_expire(mail_env: ServerEnv, inbox: tuple[Inbox, int]) -> None:
    env, box = mail_env, inbox[0]
    await env.user("alice")
    ua = env.browser()
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    link = box.link(box.messages[0])
    page = await ua.get(link)
    env.clock.advance(env.settings.password_reset_ttl + 1)
    late = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert late.status_code == 400
    assert (await sign_in(env, "alice", PASSWORD)).status_code == 303


async def test_the_forms_need_their_csrf_token(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env = mail_env
    await env.user("alice")
    ua = env.browser()
    for path, values in (
        ("/forgot-password", {"login": "alice"}),
        ("/signup", {"email": "n@example.com", "password": NEW_PASSWORD}),
    ):
        fields = {**hidden_fields((await ua.get(path)).text), **values}
        assert (await ua.post(path, data={**fields, "csrf_token": "x"})).status_code == 403
        cross = await ua.post(path, data=fields, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
    await sent(env)
    assert inbox[0].messages == []


async def test_the_forms_are_throttled_alike_for_known_and_unknown_accounts(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env = mail_env
    await env.user("alice")
    ua = env.browser()
    for login in ("alice", "nobody@example.com"):
        answers = [(await post_form(ua, "/forgot-password", login=login)) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert "Retry-After" in answers[-1].headers
    await sent(env)
    assert len(inbox[0].messages) == 3  # alice's three; nobody's none


async def test_a_mailbox_gets_its_share_however_the_account_is_named(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """The forgotten-password form charges the mailbox the link goes to, not only what was
    typed: alternating the username and the address (three of each, within each one's own
    budget) sends alice's mailbox three messages, not six. The answers stay the same, so they
    tell nobody which username has which address; an unknown login is counted alike. The
    confirmation link of the account page charges that mailbox too."""
    env, box = mail_env, inbox[0]
    client = await env.client()
    await env.user("alice")
    ua = env.browser()
    answers = [
        await post_form(ua, "/forgot-password", login=login)
        for login in ("alice", "alice@example.com") * 3
    ]
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.text for a in answers}) == 1
    await sent(env)
    assert len(box.to("alice@example.com")) == 3
    # the mailbox's share is spent: the account page's confirmation link waits too
    signed_in = env.browser()
    assert (await env.authorize(signed_in, client)).response.status_code == 303
    token = hidden_fields((await signed_in.get("/account")).text)["csrf_token"]
    asked = await signed_in.post("/account/verify-email", data={"csrf_token": token})
    assert asked.status_code == 429
    assert "Retry-After" in asked.headers
    await sent(env)
    assert len(box.to("alice@example.com")) == 3


async def test_a_slow_mail_server_delays_no_answer(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    await env.user("alice")
    box.hold.clear()  # the SMTP server does not answer DATA until released
    ua = env.browser()
    # bounded only so that a regression fails instead of hanging: the answer must not wait
    answer = await asyncio.wait_for(post_form(ua, "/forgot-password", login="alice"), 60)
    assert answer.status_code == 200
    assert box.messages == []
    box.hold.set()
    await sent(env)
    assert len(box.messages) == 1


async def test_the_outbox_lists_the_messages_with_their_links(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    values = settings.model_dump()
    values.update(email_backend="outbox", outbox_dir=str(tmp_path / "outbox"), signup="open")
    async with ServerEnv.start(Settings(**values), clock) as env:
        ua = env.browser()
        sent_page = await post_form(ua, "/signup", email="nora@example.com", password=NEW_PASSWORD)
        # the page that sent the message links to where it landed
        assert 'href="/dev/outbox" target="_blank" rel="noopener"' in sent_page.text
        await runtime(env).mailer.drain()
        outbox = await ua.get("/dev/outbox")
        assert outbox.status_code == 200
        assert "Finish creating your account" in outbox.text
        found = re.search(r'href="https://as\.test(/confirm\?token=[^"]+)"', outbox.text)
        assert found
        page = await ua.get(found.group(1))
        created = await ua.post("/confirm", data=hidden_fields(page.text))
        assert "Your account is ready" in created.text


async def test_sign_up_and_forgotten_password_link_back_to_the_sign_in(
    mail_env: ServerEnv,
) -> None:
    """Opened from a client's sign-in, the pages' "Sign in" returns to it (the person goes back
    there after following the mailed link); a malformed ``txn`` gives the bare login page."""
    env = mail_env
    ua = env.browser()
    started = await env.start_authorize(ua, await env.client())
    login = await ua.get(started.response.headers["location"])
    txn = hidden_fields(login.text)["txn"]
    back = f'href="/login?txn={txn}"'
    for path in ("/signup", "/forgot-password"):
        assert f'href="{path}?txn={txn}"' in login.text
        page = await ua.get(f"{path}?txn={txn}")
        assert back in page.text
        assert hidden_fields(page.text)["txn"] == txn  # kept through the form's answer
    sent_page = await post_form(
        ua, f"/signup?txn={txn}", email="nora@example.com", password=NEW_PASSWORD
    )
    assert "Check your mailbox" in sent_page.text
    assert back in sent_page.text
    assert 'href="/dev/outbox"' not in sent_page.text  # SMTP here: no outbox to link
    again = await ua.get(back.removeprefix('href="').removesuffix('"'))
    assert again.status_code == 200
    assert hidden_fields(again.text)["txn"] == txn
    for bad in ("x", "ts_ix_<b>", "ts_ix_a&b=c", "ts_ix_" + "a" * 100):
        page = await ua.get("/signup", params={"txn": bad})
        assert 'href="/login' not in page.text  # the bare login page only says "expired"
        assert "go back to the application you use" in page.text
        assert 'name="txn"' not in page.text


async def test_the_pages_of_a_mailed_link_send_nobody_to_an_expired_sign_in(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """A mailed link is opened in a new tab, with no sign-in to return to: its pages (the
    reset form and its "password is changed", the confirmation) do not link to the bare login
    page, which answers "This sign-in page has expired"; they say to sign in from the
    application."""
    env, box = mail_env, inbox[0]
    await env.user("alice")
    ua = env.browser()
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    mailed = env.browser()  # the mail opened elsewhere
    page = await mailed.get(box.link(box.messages[0]))
    done = await mailed.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert "password is changed" in done.text
    expired = await mailed.get("/login")
    assert "expired" in expired.text
    for shown in (page, done):
        assert 'href="/login' not in shown.text
        assert "go back to the application you use" in shown.text


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SMTP server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_out_over_starttls_or_implicit_tls_with_a_verified_certificate(
    settings: Settings, clock: FakeClock, tmp_path: Path, security: str
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = Inbox()
    handler.hold.set()
    port = free_port()
    if security == "starttls":
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
        )
    else:
        controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        values = settings.model_dump()
        values.update(MAIL, smtp_port=port, smtp_security=security, smtp_ca_file=str(cert_file))
        async with ServerEnv.start(Settings(**values), clock) as env:
            await env.user("alice")
            await post_form(env.browser(), "/forgot-password", login="alice")
            await sent(env)
            assert runtime(env).mailer.failed == 0
            (message,) = handler.messages
            assert handler.link(message).startswith("/reset-password?token=")
        # without the CA, the server's certificate is refused and nothing is sent
        values.update(smtp_ca_file=None)
        async with ServerEnv.start(Settings(**values), clock) as env:
            await post_form(env.browser(), "/forgot-password", login="alice")
            await sent(env)
            assert runtime(env).mailer.failed == 1
            assert len(handler.messages) == 1
    finally:
        controller.stop()


async def test_a_signed_in_user_confirms_their_address_from_the_account_page(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    env, box = mail_env, inbox[0]
    client = await env.client()
    await env.user("alice")  # made by an administrator: the address is not confirmed
    ua = env.browser()
    assert (await env.authorize(ua, client)).response.status_code == 303
    page = await ua.get("/account")
    assert "is not confirmed yet" in page.text
    token = hidden_fields(page.text)["csrf_token"]
    assert (await ua.post("/account/verify-email", data={"csrf_token": "x"})).status_code == 403
    asked = await ua.post("/account/verify-email", data={"csrf_token": token})
    assert asked.status_code == 303
    assert "We sent a link" in (await ua.get(asked.headers["location"])).text
    await sent(env)
    (message,) = box.to("alice@example.com")
    link = box.link(message)
    assert link.startswith("/confirm?token=ts_ev_")
    confirm = await ua.get(link)
    done = await ua.post("/confirm", data=hidden_fields(confirm.text))
    assert "is confirmed" in done.text
    user = await env.admin.find_user("alice")
    assert user is not None
    assert user.email_verified
    assert "is not confirmed yet" not in (await ua.get("/account")).text
    # signed out, the button does nothing
    signed_out = await env.browser().post("/account/verify-email", data={"csrf_token": token})
    assert signed_out.status_code == 401


async def test_the_new_pages_carry_the_strict_headers_of_the_others(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    ua = mail_env.browser()
    for path in ("/signup", "/forgot-password", "/confirm?token=x", "/reset-password?token=x"):
        page = await ua.get(path)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp, path
        assert "script-src" not in csp, path  # no script at all
        assert "unsafe-inline" not in csp, path
        assert page.headers["x-frame-options"] == "DENY", path
        assert "style=" not in page.text, path
        assert "<script" not in page.text, path
    assert (await ua.get("/dev/outbox")).status_code == 404  # the SMTP backend has no outbox


def test_mail_settings_refuse_clear_text_to_a_remote_server_and_injected_headers() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="loopback"):
        Settings(smtp_host="smtp.example.com", smtp_security="none")
    Settings(smtp_host="127.0.0.1", smtp_security="none")
    for bad in ("accounts", "a@example.com\r\nBcc: everyone@example.com"):
        with pytest.raises(ValidationError, match="email_from"):
            Settings(email_from=bad)
    with pytest.raises(ValidationError):
        Settings(password_min_length=7)


async def test_a_reset_link_is_bound_to_the_address_it_was_sent_to(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """Red team: a reset link mailed to the account's old address (say a mailbox the user lost
    and gave up) must not reset the password once the account's address has changed."""
    env, box = mail_env, inbox[0]
    await env.user("alice")
    ua = env.browser()
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    link = box.link(box.messages[0])
    page = await ua.get(link)
    assert page.status_code == 200
    await env.admin.update_profile("alice", email="alice@new.example")
    assert (await ua.get(link)).status_code == 400
    late = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert late.status_code == 400
    assert "not valid" in late.text
    assert (await sign_in(env, "alice", PASSWORD)).status_code == 303


async def test_a_code_issued_before_a_reset_gets_no_tokens_after_it(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """Red team: a reset ends every session and grant, so a code issued under the old password
    (an intruder's, not yet redeemed) must not become a fresh grant after the reset."""
    env, box = mail_env, inbox[0]
    client, _ = await start(env)
    flow = await env.authorize(env.browser(), client, scope="docs:read")
    ua = env.browser()
    await post_form(ua, "/forgot-password", login="alice")
    await sent(env)
    page = await ua.get(box.link(box.messages[-1]))
    done = await ua.post(
        "/reset-password", data={**hidden_fields(page.text), "password": NEW_PASSWORD}
    )
    assert "password is changed" in done.text
    late = await env.redeem(client, flow.code, flow.verifier)
    assert late.status_code == 400, late.text
    assert late.json()["error"] == "invalid_grant"


async def test_sign_up_while_the_hashing_pool_is_full_gets_the_busy_page(
    mail_env: ServerEnv, inbox: tuple[Inbox, int]
) -> None:
    """A browser form that hashes a password beyond the pool's queue (``password_hash_queue``)
    gets the 503 page with ``Retry-After`` at once, not a JSON error or a long wait."""
    env = mail_env
    hasher = runtime(env).server.passwords
    held = [hasher.admit() for _ in range(hasher._limit)]  # every place taken
    try:
        refused = await post_form(
            env.browser(), "/signup", email="nora@example.com", name="Nora", password=NEW_PASSWORD
        )
    finally:
        for place in held:
            place.close()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert "Too many people are signing in right now" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
