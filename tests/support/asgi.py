"""The ASGI scope of one HTTP request as a server hands it to the app, for tests that call an
app directly with exact bytes (no client library in between)."""

from __future__ import annotations

from typing import Any


def http_scope(
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    *,
    scheme: str = "https",
    query_string: bytes = b"",
    server: tuple[str, int] = ("as.test", 443),
) -> dict[str, Any]:
    """``headers`` as given (a ``host`` included only if the caller puts it there)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": server,
        "state": {},
    }
