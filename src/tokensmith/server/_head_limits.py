"""What both request-head parsers share (``protocols`` for h11, ``_httptools``): the limits'
answers and log lines, and the one way they refuse a request themselves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from http import HTTPStatus

from tokensmith.server.middleware import api_headers
from tokensmith.server.observability import new_request_id, request_id

REFUSED = b"Request header fields too large"
TIMED_OUT = b"The request headers did not arrive in time"
FIELD_OVERHEAD = 4
"""``": "`` and CRLF around each header field, as they are counted on the wire."""

log = logging.getLogger("tokensmith.server")


class HeadTooLarge(Exception):
    """The request head passed a limit; raised inside a parser callback to stop parsing."""


def refuse(
    transport: asyncio.Transport,
    status: int,
    body: bytes,
    *,
    why: str,
    level: int,
    https: bool,
    default_headers: Iterable[tuple[bytes, bytes]],
    answer: bool = True,
) -> None:
    """Refuse a request before any application sees it (400, 408, 431): log ``why`` under a
    fresh request id, write the whole answer (unless ``answer`` is false) and close the
    connection.

    The answer carries what an application's answer would (:class:`Observability`, which adds
    the security headers, never sees it): uvicorn's ``default_headers`` (``date``), the
    security headers of an API answer (:func:`api_headers`, HSTS included when the issuer is
    https), ``cache-control: no-store``, ``connection: close`` and the ``x-request-id`` that the
    log line carries."""
    rid = new_request_id()
    token = request_id.set(rid)
    try:
        log.log(level, "request refused with %d: %s", status, why)
    finally:
        request_id.reset(token)
    if answer:
        transport.write(_answer(status, body, rid, https=https, default_headers=default_headers))
    transport.close()


def _answer(
    status: int,
    body: bytes,
    rid: str,
    *,
    https: bool,
    default_headers: Iterable[tuple[bytes, bytes]],
) -> bytes:
    headers = [
        *default_headers,
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
        *api_headers(https=https),
        (b"x-request-id", rid.encode("ascii")),
    ]
    phrase = HTTPStatus(status).phrase.encode("ascii")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


def refusal_reason(max_header_bytes: int, max_header_fields: int, *, fields: bool) -> str:
    if fields:
        return f"more than {max_header_fields} header fields"
    return f"request line and headers larger than {max_header_bytes} bytes"
