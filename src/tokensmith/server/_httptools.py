"""uvicorn's httptools protocol with the head limits of :mod:`tokensmith.server.protocols`
(imported from there only when httptools is installed)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tokensmith.server._head_limits import (
    FIELD_OVERHEAD,
    REFUSED,
    TIMED_OUT,
    HeadTooLarge,
    log,
    refusal_reason,
    refuse,
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Times each request head (408 past ``header_read_timeout``) and the rest of an unread
    body, and counts the bytes of each head as they arrive, refusing with 431:

    - ``_head_received``: bytes received since the head began. Once it passes the limit while
      the head is still incomplete, the head is too large, whatever it holds (a single endless
      field, which httptools would buffer until its end, included). It may miss the part of a
      pipelined head that arrived in the read that ended the previous request: at most one
      read more than the limit is ever buffered.
    - ``_head_bytes`` and ``_head_fields``: the request target and each complete field,
      counted exactly as httptools hands them over, so a head that arrives whole in one read
      is measured too.

    Its own answers (408, 431, and uvicorn's 400 to what is not HTTP) carry the headers of an
    application's answer (:func:`~tokensmith.server._head_limits.refuse`; ``https``: HSTS).
    """

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
        self.max_header_bytes = max_header_bytes
        self.max_header_fields = max_header_fields
        self.header_read_timeout = header_read_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_received = 0
        self._head_bytes = 0
        self._head_fields = 0
        self._refused: str | None = None

    # The head deadline: armed when the connection opens, and after the read that brought the
    # first bytes of a later head when that read did not complete it; cancelled when the head
    # is complete.

    def _awaiting_head(self) -> bool:
        return self._in_head and (self.cycle is None or self.cycle.response_complete)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(
                self.header_read_timeout, self._head_deadline_passed
            )

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not self._awaiting_head():
            return
        if self._head_received:
            self._refuse_with(408, TIMED_OUT, "the headers did not arrive in time", logging.INFO)
        else:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        self._cancel_drain_deadline()
        super().connection_lost(exc)

    # The drain deadline: the rest of a body the application answered without reading (the
    # message is not complete when its response is).

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_head:
            self._drain_deadline = self.loop.call_later(
                self.header_read_timeout, self._drain_deadline_passed
            )

    def _cancel_drain_deadline(self) -> None:
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None

    def _drain_deadline_passed(self) -> None:
        self._drain_deadline = None
        if not self.transport.is_closing() and not self._in_head:
            log.info("connection closed: the rest of an unread request body came too slowly")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        if self._in_head:
            self._head_received += len(data)
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_received > self.max_header_bytes:
            self._refuse(fields=False)
        elif self._head_received and self._awaiting_head():
            # A head begun and not complete after this read: its deadline runs from now (the
            # read of its first byte). A head that came whole in one read, as nearly every one
            # does, never arms a timer (one created and cancelled per request otherwise).
            self._arm_head_deadline()

    # Parser callbacks: an exception stops llhttp; uvicorn then answers with send_400_response.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = len(b" HTTP/1.1\r\n")
        self._head_fields = 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.max_header_bytes:
            self._refused = refusal_reason(
                self.max_header_bytes, self.max_header_fields, fields=False
            )
            raise HeadTooLarge(self._refused)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + FIELD_OVERHEAD
        self._head_fields += 1
        too_many = self._head_fields > self.max_header_fields
        if too_many or self._head_bytes > self.max_header_bytes:
            self._refused = refusal_reason(
                self.max_header_bytes, self.max_header_fields, fields=too_many
            )
            raise HeadTooLarge(self._refused)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_received = 0
        if self._drain_deadline is not None:
            # The rest of a body answered without reading it: the connection now waits for its
            # next head. This read cancelled uvicorn's keep-alive timer (armed when the response
            # completed) and nothing arms it again: without the head deadline no timer is left.
            self._cancel_drain_deadline()
            if not self.transport.is_closing():
                self._arm_head_deadline()

    def send_400_response(self, msg: str) -> None:
        if self._refused is None:
            # what llhttp cannot parse (uvicorn logged it): uvicorn's answer, with our headers
            self._refuse_with(400, msg.encode("ascii"), "not a valid HTTP request", logging.INFO)
            return
        self._send_431(self._refused)

    def _refuse(self, *, fields: bool) -> None:
        self._refused = refusal_reason(self.max_header_bytes, self.max_header_fields, fields=fields)
        self._send_431(self._refused)

    def _send_431(self, reason: str) -> None:
        self._refuse_with(431, REFUSED, reason, logging.WARNING)

    def _refuse_with(self, status: int, body: bytes, why: str, level: int) -> None:
        refuse(
            self.transport,
            status,
            body,
            why=why,
            level=level,
            https=self.https,
            default_headers=self.server_state.default_headers,
            # while an earlier pipelined request is still being answered, the connection is
            # closed without a word: the refusal would be written into the middle of that answer
            answer=self.cycle is None or self.cycle.response_complete,
        )
