"""uvicorn's HTTP/1.1 protocols with a limit on the request head: the request line and header
fields together at most ``max_header_bytes``, at most ``max_header_fields`` fields. A request
over either limit is answered ``431 Request Header Fields Too Large`` (RFC 6585 §5) and its
connection closed, while the head arrives: an endless or huge header is refused once the limit
is passed, not buffered first.

- httptools (uvicorn's default when installed): llhttp has no size limit of its own and
  httptools hands over a header field only when it is complete, so bytes are counted as they
  are received (``data_received``), and each complete field is counted exactly (``on_url``,
  ``on_header``). Memory held for a head is bounded by the limit plus one socket read.
- h11: ``max_incomplete_event_size`` bounds a head that has not yet arrived whole (h11 raises
  with ``error_status_hint=431``); a complete head is measured exactly and its fields counted
  when h11 hands it over, before the application sees it.

``tokensmith serve`` picks one with :func:`http_protocol` for every ``--http``, ``--loop`` and
``--workers`` (a ``functools.partial`` of a module-level class, so worker processes unpickle it).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
from collections.abc import Callable
from typing import Any, Literal

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

__all__ = ["HttpParser", "http_protocol"]

HttpParser = Literal["auto", "httptools", "h11"]
REFUSED = b"Request header fields too large"
FIELD_OVERHEAD = 4
"""``": "`` and CRLF around each header field, as they are counted on the wire."""

log = logging.getLogger("tokensmith.server")


class HeadTooLarge(Exception):
    """The request head passed a limit; raised inside a parser callback to stop parsing."""


def http_protocol(
    http: HttpParser, *, max_header_bytes: int, max_header_fields: int
) -> Callable[..., asyncio.Protocol]:
    """uvicorn's ``http`` argument: the protocol of parser ``http`` (``auto``: httptools when
    installed, as uvicorn chooses), with the head limits."""
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    cls: Callable[..., asyncio.Protocol] = (
        _httptools_protocol() if http == "httptools" else LimitedH11Protocol
    )
    return functools.partial(
        cls, max_header_bytes=max_header_bytes, max_header_fields=max_header_fields
    )


def _refusal(max_header_bytes: int, max_header_fields: int, *, fields: bool) -> str:
    if fields:
        return f"more than {max_header_fields} header fields"
    return f"request line and headers larger than {max_header_bytes} bytes"


# -- h11 --------------------------------------------------------------------------------------


class _LimitedConnection(h11.Connection):
    """An h11 server connection that refuses heads over the limits (``refused`` says why)."""

    def __init__(self, *, max_header_bytes: int, max_header_fields: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self.max_header_bytes = max_header_bytes
        self.max_header_fields = max_header_fields
        self.refused: str | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                self.refused = _refusal(self.max_header_bytes, self.max_header_fields, fields=False)
            raise
        if isinstance(event, h11.Request):
            size = len(event.method) + len(event.target) + len(b" HTTP/1.1\r\n") + 1
            size += sum(len(name) + len(value) + FIELD_OVERHEAD for name, value in event.headers)
            too_many = len(event.headers) > self.max_header_fields
            if too_many or size > self.max_header_bytes:
                self.refused = _refusal(
                    self.max_header_bytes, self.max_header_fields, fields=too_many
                )
                raise h11.RemoteProtocolError(self.refused, error_status_hint=431)
        return event


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the head limits of this module."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_header_bytes: int,
        max_header_fields: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = _LimitedConnection(
            max_header_bytes=max_header_bytes, max_header_fields=max_header_fields
        )

    def send_400_response(self, msg: str) -> None:
        conn = self.conn
        if not isinstance(conn, _LimitedConnection) or conn.refused is None:
            super().send_400_response(msg)
            return
        log.warning("request refused with 431: %s", conn.refused)
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"connection", b"close"),
        ]
        reason = b"Request Header Fields Too Large"
        for event in (
            h11.Response(status_code=431, headers=headers, reason=reason),
            h11.Data(data=REFUSED),
            h11.EndOfMessage(),
        ):
            output = conn.send(event)
            if output:
                self.transport.write(output)
        self.transport.close()


# -- httptools --------------------------------------------------------------------------------


@functools.cache
def _httptools_protocol() -> type[asyncio.Protocol]:
    """The httptools protocol class (imported only when httptools is installed)."""
    from tokensmith.server._httptools import LimitedHttpToolsProtocol

    return LimitedHttpToolsProtocol
