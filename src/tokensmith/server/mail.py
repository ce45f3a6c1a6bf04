"""E-mail that goes out: the messages of ``core.self_service`` rendered from templates (plain text
and HTML, Jinja2 autoescaped for HTML) and sent in the background.

``Mailer.notify`` (the core's ``Notifier``) only puts the notice on a bounded queue and returns:
no request ever waits on the mail server, so a slow or unreachable one neither delays an answer
nor shows, by a delay, which addresses have an account. A worker task started with the server
renders and sends one message at a time; a failure is logged (without the link) and the message
dropped (the person can ask again). At shutdown the queue is given a few seconds to drain.

Backends (``email_backend``):

- ``smtp``: aiosmtplib, with STARTTLS (``smtp_security=starttls``, port 587) or implicit TLS
  (``tls``, port 465), certificates verified; ``none`` only to a loopback host.
- ``outbox``: development. Each message is written to ``outbox_dir`` as an ``.eml`` file, and the
  server lists them at ``outbox_path`` (``server/routes/dev_outbox.py``), links clickable; the
  route exists only with this backend. ``tokensmith demo`` uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tokensmith.core.self_service import AccountNotice
from tokensmith.settings import Settings

log = logging.getLogger("tokensmith.mail")

SUBJECTS = {
    "signup": "Finish creating your account",
    "signup_existing": "You already have an account",
    "invitation": "You are invited to create an account",
    "verify_email": "Confirm your e-mail address",
    "reset_password": "Choose a new password",
    "password_changed": "Your password was changed",
    "change_email": "Confirm your new e-mail address",
    "change_email_existing": "This address already has an account",
    "email_change_requested": "Your account's e-mail address is being changed",
    "email_changed": "Your account's e-mail address was changed",
}
QUEUE_SIZE = 1000
DRAIN_SECONDS = 5.0


class MailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            cert_bundle=s.smtp_ca_file,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout,
        )


class OutboxBackend:
    """Development only: messages as ``.eml`` files in a folder, newest last."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.urandom(4).hex()}.eml"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(message.as_bytes(policy=email_policy.SMTP))
        tmp.replace(self.folder / name)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    name: str
    to: str
    subject: str
    date: str
    text: str
    links: tuple[str, ...]


_LINK = re.compile(r"https?://[^\s<>\"']+")
_NAME = re.compile(r"^[0-9]+-[0-9a-f]{8}\.eml$")


def read_outbox(folder: Path, *, limit: int = 50) -> list[OutboxMessage]:
    """The newest messages of the development outbox, newest first."""
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if _NAME.match(p.name)), reverse=True)
    out = []
    for name in names[:limit]:
        parsed = BytesParser(policy=email_policy.default).parsebytes((folder / name).read_bytes())
        if not isinstance(parsed, EmailMessage):  # pragma: no cover - the policy makes one
            continue
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        out.append(
            OutboxMessage(
                name=name,
                to=str(parsed["To"]),
                subject=str(parsed["Subject"]),
                date=str(parsed["Date"]),
                text=text,
                # the links to follow (not the bare issuer each message names)
                links=tuple(
                    link
                    for link in dict.fromkeys(_LINK.findall(text))
                    if urlsplit(link).path not in ("", "/")
                ),
            )
        )
    return out


def backend_for(settings: Settings) -> MailBackend | None:
    if settings.email_backend == "smtp":
        return SmtpBackend(settings)
    if settings.email_backend == "outbox":
        return OutboxBackend(Path(settings.outbox_dir))
    return None


class Mailer:
    """Renders notices and sends them from a background task (see the module docstring)."""

    def __init__(self, settings: Settings, backend: MailBackend | None) -> None:
        self.settings = settings
        self.backend = backend
        self.env = Environment(
            loader=PackageLoader("tokensmith.server", "templates/mail"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        self._queue: asyncio.Queue[AccountNotice] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def notify(self, notice: AccountNotice) -> None:
        """Queue a notice; never blocks (a full queue drops it, logged)."""
        if self.backend is None:
            return
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.failed += 1
            log.error("mail queue full: a %s message was dropped", notice.kind)

    def render(self, notice: AccountNotice) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.email_from
        message["To"] = notice.to
        message["Subject"] = SUBJECTS[notice.kind]
        message["Date"] = formatdate(localtime=False)
        domain = parseaddr(self.settings.email_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"
        ctx = {
            "notice": notice,
            "issuer": self.settings.issuer,
            "subject": SUBJECTS[notice.kind],
        }
        text = self.env.get_template(f"{notice.kind}.txt").render(**ctx)
        message.set_content(text)
        # the HTML part: the same paragraphs, autoescaped, in one layout (``message.html``)
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
        html = self.env.get_template("message.html").render(paragraphs=paragraphs, **ctx)
        message.add_alternative(html, subtype="html")
        return message

    async def send_now(self, notice: AccountNotice) -> bool:
        """Render and send a notice at once, for a command that waits and reports a failure
        (``tokensmith users invite``): ``False`` when no backend is configured; the backend's
        error propagates."""
        if self.backend is None:
            return False
        await self.backend.send(self.render(notice))
        return True

    async def _send(self, notice: AccountNotice) -> None:
        try:
            await self.send_now(notice)
        except Exception as exc:  # a mail server's failure must not stop the worker
            self.failed += 1
            log.error("sending a %s message failed: %s", notice.kind, type(exc).__name__)
        else:
            self.sent += 1

    async def run(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self._send(notice)
            finally:
                self._queue.task_done()

    def start(self) -> None:
        if self.backend is not None and self._task is None:
            self._task = asyncio.create_task(self.run())

    async def drain(self) -> None:
        """Wait until every queued message was sent or failed (tests, shutdown)."""
        await self._queue.join()

    async def stop(self) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_SECONDS)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
