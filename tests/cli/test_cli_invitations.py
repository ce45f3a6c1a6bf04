"""``tokensmith users invite`` / ``invitations`` / ``revoke-invitation`` (issue 18 item 2): the
invitation is mailed through the configured backend (a real local SMTP server, aiosmtpd) and
printed; its link is followed through the real sign-up page of an in-process server on the same
database. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import time

from tests.live import free_port
from tests.server.harness import ServerEnv, hidden_fields
from tests.support.cli import Cli
from tests.support.mail import smtp_inbox, with_mail
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

NEW_PASSWORD = "tangerine submarine orchestra"


def mailing_cli(database_url: str, port: int, **extra: str) -> Cli:
    return Cli(
        database_url,
        TOKENSMITH_SIGNUP="invite",
        TOKENSMITH_EMAIL_BACKEND="smtp",
        TOKENSMITH_SMTP_HOST="127.0.0.1",
        TOKENSMITH_SMTP_PORT=str(port),
        TOKENSMITH_SMTP_SECURITY="none",
        **extra,
    )


async def accept(database_url: str, port: int, path: str) -> tuple[int, str]:
    """Follow an invitation's link in a server on the database: the answer to its form."""
    base = Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]
    async with ServerEnv.start(
        with_mail(base, port, signup="invite"), FakeClock(time.time())
    ) as env:
        ua = env.browser()
        page = await ua.get(path)
        if page.status_code != 200:
            return page.status_code, page.text
        # as a browser sends it: the hidden fields, the name the page proposes, a password
        proposed = re.search(
            r'id="name" name="name" type="text" autocomplete="name" value="([^"]*)"', page.text
        )
        assert proposed is not None
        values = {"name": proposed.group(1), "password": NEW_PASSWORD}
        done = await ua.post("/signup", data={**hidden_fields(page.text), **values})
        return done.status_code, done.text


def test_users_invite_mails_the_link_prints_it_and_the_link_makes_the_account(
    database_url: str,
) -> None:
    with smtp_inbox() as (box, port):
        cli = mailing_cli(database_url, port)
        done = cli("users", "invite", "Nora@Example.com", "--name", "Nora", "--ttl", "2d")
        assert done.stderr == ""
        assert done.stdout.startswith("invited nora@example.com until ")
        link = done.stdout.split("the link: ", 1)[1].strip()
        assert link.startswith("https://as.test/signup?invite=ts_iv_")
        (message,) = box.to("nora@example.com")
        assert box.link(message) == link.removeprefix("https://as.test")
        assert "2 days" in box.text(message)
        (listed,) = cli.json("users", "invitations")
        assert listed["email"] == "nora@example.com"
        assert listed["name"] == "Nora"
        assert listed["expires_at"] - listed["created_at"] == 2 * 86400
        assert "nora@example.com" in cli("users", "invitations").stdout
        status, page = asyncio.run(accept(database_url, port, box.link(message)))
        assert status == 200
        assert "Your account is ready" in page
        (user,) = cli.json("users", "list")
        assert (user["email"], user["email_verified"], user["name"]) == (
            "nora@example.com",
            True,
            "Nora",
        )
        assert cli("users", "invitations").stdout.strip() == "no pending invitations"
        # the address has an account now
        cli.refused("users", "invite", "nora@example.com", match="exists already")


def test_users_revoke_invitation_kills_the_link(sqlite_url: str) -> None:
    with smtp_inbox() as (box, port):
        cli = mailing_cli(sqlite_url, port)
        cli("users", "invite", "nora@example.com")
        cli("users", "invite", "nora@example.com")  # the second withdraws the first
        first, second = (box.link(m) for m in box.to("nora@example.com"))
        assert len(cli.json("users", "invitations")) == 1
        assert cli("users", "revoke-invitation", "NORA@example.com").stdout.startswith("withdrew")
        cli.refused("users", "revoke-invitation", "nora@example.com", match="no pending")
        for path in (first, second):
            status, page = asyncio.run(accept(sqlite_url, port, path))
            assert status == 400
            assert "not valid any more" in page
        assert cli.json("users", "list") == []


def test_users_invite_without_mail_or_with_a_dead_mail_server_prints_the_link(
    sqlite_url: str,
) -> None:
    quiet = Cli(sqlite_url, TOKENSMITH_SIGNUP="invite")
    done = quiet("users", "invite", "nora@example.com", "--json")
    assert "no e-mail backend is configured" in done.stderr
    assert "pass the link on to nora@example.com yourself" in done.stderr
    answer = json.loads(done.stdout)
    assert answer["mailed"] is False
    assert answer["link"].startswith("https://as.test/signup?invite=ts_iv_")
    dead = mailing_cli(sqlite_url, free_port())  # nothing listens there
    done = dead("users", "invite", "bob@example.com")
    assert "the message could not be sent" in done.stderr
    assert "not mailed; the link: https://as.test/signup?invite=ts_iv_" in done.stdout
    assert len(dead.json("users", "invitations")) == 2


def test_users_invite_refusals(sqlite_url: str) -> None:
    Cli(sqlite_url).refused("users", "invite", "nora@example.com", match="sign-up is off")
    cli = Cli(sqlite_url, TOKENSMITH_SIGNUP="invite")
    cli.refused("users", "invite", "nora", match="not an e-mail address")
    cli.refused("users", "invite", "nora@example.com", "--ttl", "5m", match="10 minutes and 30")
    cli.refused("users", "invite", "nora@example.com", "--ttl", "31d", match="10 minutes and 30")
    cli.refused("users", "invite", "nora@example.com", "--ttl", "soon", code=2, match="")
    cli.refused("users", "revoke-invitation", "nora", match="not an e-mail address")
    cli(
        "users",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        "--password-stdin",
        input="correct horse battery staple\n",
    )
    cli.refused("users", "invite", "alice@example.com", match="exists already")
    assert cli.json("users", "invitations") == []
