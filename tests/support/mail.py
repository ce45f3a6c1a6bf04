"""Self-service test helpers: a real local SMTP server (aiosmtpd) that keeps what it receives
(``smtp_inbox``; the fixture ``inbox``), the settings that point the server at it, a server
that sends its mail there (``mail_env``: SQLite, PostgreSQL, and PostgreSQL + Redis for the
throttling counters), and the steps of the self-service pages those tests take. Import the
fixtures ``inbox`` and ``mail_env`` into a test module (``tests/server/conftest.py`` does) to
use them."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.live import free_port
from tests.server.harness import ServerEnv, hidden_fields
from tokensmith.core.clock import FakeClock
from tokensmith.server.runtime import Runtime
from tokensmith.settings import Settings

LINK = re.compile(r"https://as\.test(/[^\s]+)")


@dataclass
class Inbox:
    """What the local SMTP server received; ``hold`` keeps it from answering DATA."""

    messages: list[EmailMessage] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self.hold.wait)
        parsed = message_from_bytes(envelope.content, policy=email_policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def text(self, message: EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    def link(self, message: EmailMessage) -> str:
        """The path and query of the message's link."""
        found = LINK.search(self.text(message))
        assert found, self.text(message)
        return found.group(1)


@contextmanager
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server on a free port, answering at once: its inbox and its port."""
    handler = Inbox()
    handler.hold.set()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with smtp_inbox() as box:
        yield box


MAIL = {
    "email_backend": "smtp",
    "smtp_host": "127.0.0.1",
    "smtp_security": "none",
    "email_from": "CloudDocs accounts <accounts@as.test>",
}


def with_mail(settings: Settings, port: int, **extra: object) -> Settings:
    """``settings`` sending mail to the local SMTP server on ``port``, sign-up open unless
    ``extra`` says otherwise."""
    values = settings.model_dump()
    values.update(MAIL, smtp_port=port, signup="open")
    values.update(extra)
    return Settings(**values)


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def mail_env(
    request: pytest.FixtureRequest,
    database_url: str,
    clock: FakeClock,
    inbox: tuple[Inbox, int],
) -> AsyncIterator[ServerEnv]:
    base = request.getfixturevalue("redis_settings" if request.param == "redis" else "settings")
    if request.param == "redis" and not database_url.startswith("postgresql"):
        pytest.skip("Redis is combined with PostgreSQL")
    async with ServerEnv.start(with_mail(base, inbox[1]), clock) as env:
        yield env


def runtime(env: ServerEnv) -> Runtime:
    rt: Runtime = env.app.state.runtime
    return rt


async def sent(env: ServerEnv) -> None:
    """Wait until the background mailer has handed every queued message to the SMTP server."""
    await runtime(env).mailer.drain()


async def post_form(ua: httpx.AsyncClient, path: str, **values: str) -> httpx.Response:
    """Open the page, then post its form (its hidden fields, CSRF token included)."""
    page = await ua.get(path)
    assert page.status_code == 200, page.text
    return await ua.post(urlsplit(path).path, data={**hidden_fields(page.text), **values})


async def sign_in(env: ServerEnv, login: str, password: str) -> httpx.Response:
    client = await env.client()
    ua = env.browser()
    started = await env.start_authorize(ua, client)
    return await env.login(ua, started.response, username=login, password=password)
