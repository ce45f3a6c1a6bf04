"""``/dev/outbox``: the development outbox's messages (``server/mail.py``), newest first, their
links clickable. Registered only when ``email_backend=outbox``; never use that in production
(anyone who can reach the page reads every reset link)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.mail import read_outbox
from tokensmith.server.state import runtime


async def outbox(request: Request) -> Response:
    rt = runtime(request)
    messages = await asyncio.to_thread(read_outbox, Path(rt.settings.outbox_dir))
    return rt.pages.render("outbox.html", headers={"Cache-Control": "no-store"}, messages=messages)
