"""The answers that ``tokensmith serve``'s HTTP protocols write themselves (431, 408, 400),
parsed and checked: they must carry what every answer of the application carries."""

from __future__ import annotations

import re
from dataclasses import dataclass

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
"""The security headers of an API answer (``SecurityHeaders``), written out."""
HSTS = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def refusal(output: bytes, status: int, *, https: bool = False) -> Answer:
    """``output``, the server's whole output on a connection it closed: one answer of
    ``status`` carrying what every answer of the application carries — the security headers
    (HSTS only when ``https``) and a request id — with ``cache-control: no-store`` and
    ``connection: close``; each header once."""
    head, end, body = output.partition(b"\r\n\r\n")
    assert end, output
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} "), output
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, output
        headers[name.lower()] = value.strip()
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, output)
    assert headers.get("strict-transport-security") == (HSTS if https else None), output
    assert headers.get("cache-control") == "no-store", output
    assert headers.get("connection") == "close", output
    assert re.fullmatch("[0-9a-f]{16}", headers.get("x-request-id", "")), output
    assert headers.get("content-type") == "text/plain; charset=utf-8", output
    assert headers.get("content-length") == str(len(body)), output
    return Answer(status, headers, body)
