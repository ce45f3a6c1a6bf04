"""uvicorn's HTTP/1.1 protocols with limits on the request head: the request line and header
fields together at most ``max_header_bytes``, at most ``max_header_fields`` fields, and all of
it within ``header_read_timeout`` seconds.

- A request over a size limit is answered ``431 Request Header Fields Too Large`` (RFC 6585 §5)
  and its connection closed, while the head arrives: an endless or huge header is refused once
  the limit is passed, not buffered first.
- A head not complete ``header_read_timeout`` seconds after the connection opened (or after
  its first byte, on a kept-alive connection) is answered ``408 Request Timeout`` (RFC 9110
  §15.5.9) and its connection closed; a new connection that sent nothing is closed. uvicorn
  has no such deadline: a connection that never finishes its head (or never sends one) was
  kept open forever, and enough of them exhaust the process's file descriptors. Between
  requests, uvicorn's keep-alive timeout (5 s) closes idle connections.
- A body the application did not read (a 405, a 404, a 413 on the declared length) must
  still arrive whole within ``header_read_timeout`` after the response, or the connection is
  closed: uvicorn discards it as it comes, and a client trickling it kept the connection
  (each byte cancelled the keep-alive timeout). Once it has arrived, the connection waits for
  its next head under the head deadline (the read that brought it cancelled uvicorn's keep-alive
  timer, which nothing arms again). Routes that read a body bound it themselves
  (``form_read_timeout``, :mod:`tokensmith.server.http`).
- What these protocols answer themselves (431, 408, and uvicorn's 400 to what is not HTTP),
  before any application runs, carries what the application's answers carry: the security
  headers of an API answer (:func:`tokensmith.server.middleware.api_headers`, HSTS when the
  issuer is https), ``cache-control: no-store``, ``connection: close`` and a fresh
  ``x-request-id``, which its log line carries too. The application's ``/metrics`` does not
  count them (it counts what the application answers).

How the head is measured:

- httptools (uvicorn's default when installed): llhttp has no size limit of its own and
  httptools hands over a header field only when it is complete, so bytes are counted as they
  are received (``data_received``), and each complete field is counted exactly (``on_url``,
  ``on_header``). Memory held for a head is bounded by the limit plus one socket read.
- h11: ``max_incomplete_event_size`` bounds a head that has not yet arrived whole (h11 raises
  with ``error_status_hint=431``); a complete head is measured exactly and its fields counted
  when h11 hands it over, before the application sees it.

``tokensmith serve`` and ``tokensmith demo`` run uvicorn with :func:`uvicorn_options`, whose
protocol :func:`http_protocol` picks for every ``--http``, ``--loop`` and ``--workers`` (a
``functools.partial`` of a module-level class, so worker processes unpickle it). Whoever runs
``uvicorn --factory tokensmith.server.factory:app_from_env`` gets the same protocol with
``--http tokensmith.server.factory:http_from_env``.
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

from tokensmith.server._head_limits import (
    FIELD_OVERHEAD,
    REFUSED,
    TIMED_OUT,
    log,
    refusal_reason,
    refuse,
)
from tokensmith.settings import Settings

__all__ = ["HttpParser", "http_protocol", "uvicorn_options"]

HttpParser = Literal["auto", "httptools", "h11"]


def uvicorn_options(
    settings: Settings, *, http: HttpParser = "auto", loop: str = "auto"
) -> dict[str, Any]:
    """What ``tokensmith serve`` and ``tokensmith demo`` give uvicorn besides the app, the
    address and the log level: the protocol of :func:`http_protocol`; ``X-Forwarded-For``
    trusted from ``forwarded_allow_ips`` only (uvicorn trusts 127.0.0.1 by default); no
    ``server`` header; no access log; no WebSocket protocol (tokensmith serves none: with a
    WebSocket library installed, ``uvicorn[standard]``'s, uvicorn would answer an upgrade
    request itself, without the head limits and headers of :func:`http_protocol`; without
    one, an upgrade request is an HTTP request like any other)."""
    return {
        "http": http_protocol(settings, http),
        "ws": "none",
        "loop": loop,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "server_header": False,
        "access_log": False,
    }


def http_protocol(settings: Settings, http: HttpParser = "auto") -> Callable[..., asyncio.Protocol]:
    """uvicorn's ``http`` argument: the protocol of parser ``http`` (``auto``: httptools when
    installed, as uvicorn chooses), with the head limits of ``settings``, and HSTS on its own
    answers when the issuer is https."""
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    cls: Callable[..., asyncio.Protocol] = (
        _httptools_protocol() if http == "httptools" else LimitedH11Protocol
    )
    return functools.partial(
        cls,
        max_header_bytes=settings.max_header_bytes,
        max_header_fields=settings.max_header_fields,
        header_read_timeout=settings.header_read_timeout,
        https=settings.is_https,
    )


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
                self.refused = refusal_reason(
                    self.max_header_bytes, self.max_header_fields, fields=False
                )
            raise
        if isinstance(event, h11.Request):
            size = len(event.method) + len(event.target) + len(b" HTTP/1.1\r\n") + 1
            size += sum(len(name) + len(value) + FIELD_OVERHEAD for name, value in event.headers)
            too_many = len(event.headers) > self.max_header_fields
            if too_many or size > self.max_header_bytes:
                self.refused = refusal_reason(
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
        header_read_timeout: float,
        https: bool,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.https = https
        self.conn = _LimitedConnection(
            max_header_bytes=max_header_bytes, max_header_fields=max_header_fields
        )
        self.header_read_timeout = header_read_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False
        self._drain_deadline: asyncio.TimerHandle | None = None

    # The head deadline: armed when the connection opens, and after the read that brought the
    # first bytes of a later head when that read did not complete it; cancelled once h11 has
    # the whole head (their state leaves IDLE).

    def _awaiting_head(self) -> bool:
        idle = self.conn.their_state is h11.IDLE
        return idle and (self.cycle is None or self.cycle.response_complete)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(
                self.header_read_timeout, self._head_deadline_passed
            )

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self._head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        self._cancel_drain_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        begins = self._awaiting_head()
        if begins:
            self._head_started = True
        super().data_received(data)
        if begins and not self.transport.is_closing() and self._awaiting_head():
            # A head begun and not complete after this read: its deadline runs from now. A
            # head that came whole in one read, as nearly every one does, never arms a timer.
            self._arm_head_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_deadline()
        if self.conn.their_state is not h11.SEND_BODY and self._drain_deadline is not None:
            # The rest of a body answered without reading it: the connection now waits for its
            # next head. This read cancelled uvicorn's keep-alive timer (armed when the response
            # completed) and nothing arms it again: without the head deadline no timer is left.
            self._cancel_drain_deadline()
            if not self.transport.is_closing() and self._awaiting_head():
                self._arm_head_deadline()

    # The drain deadline: the rest of a body the application answered without reading.

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            self._drain_deadline = self.loop.call_later(
                self.header_read_timeout, self._drain_deadline_passed
            )

    def _cancel_drain_deadline(self) -> None:
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None

    def _drain_deadline_passed(self) -> None:
        self._drain_deadline = None
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            log.info("connection closed: the rest of an unread request body came too slowly")
            self.transport.close()

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not self._awaiting_head():
            return
        if self._head_started:
            self._refuse_with(408, TIMED_OUT, "the headers did not arrive in time", logging.INFO)
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        conn = self.conn
        if isinstance(conn, _LimitedConnection) and conn.refused is not None:
            self._refuse_with(431, REFUSED, conn.refused, logging.WARNING)
        else:
            # what h11 cannot parse (uvicorn logged it): uvicorn's answer, with our headers
            self._refuse_with(400, msg.encode("ascii"), "not a valid HTTP request", logging.INFO)

    def _refuse_with(self, status: int, body: bytes, why: str, level: int) -> None:
        # Written as bytes, not through h11 (the connection closes after it, so h11's state
        # does not matter): the same answer under both parsers.
        refuse(
            self.transport,
            status,
            body,
            why=why,
            level=level,
            https=self.https,
            default_headers=self.server_state.default_headers,
        )


# -- httptools --------------------------------------------------------------------------------


@functools.cache
def _httptools_protocol() -> type[asyncio.Protocol]:
    """The httptools protocol class (imported only when httptools is installed)."""
    from tokensmith.server._httptools import LimitedHttpToolsProtocol

    return LimitedHttpToolsProtocol
