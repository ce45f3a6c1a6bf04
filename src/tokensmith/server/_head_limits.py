"""What both request-head parsers share (``protocols`` for h11, ``_httptools``): the limits'
answers and log lines."""

from __future__ import annotations

import logging

REFUSED = b"Request header fields too large"
TIMED_OUT = b"The request headers did not arrive in time"
FIELD_OVERHEAD = 4
"""``": "`` and CRLF around each header field, as they are counted on the wire."""

log = logging.getLogger("tokensmith.server")


class HeadTooLarge(Exception):
    """The request head passed a limit; raised inside a parser callback to stop parsing."""


def timeout_response() -> bytes:
    """The whole ``408`` answer to a head that did not arrive in time (the connection closes)."""
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(TIMED_OUT)).encode("ascii") + b"\r\n"
        b"connection: close\r\n\r\n" + TIMED_OUT
    )


def refusal_reason(max_header_bytes: int, max_header_fields: int, *, fields: bool) -> str:
    if fields:
        return f"more than {max_header_fields} header fields"
    return f"request line and headers larger than {max_header_bytes} bytes"
