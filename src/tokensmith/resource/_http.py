"""Outbound HTTP with a total deadline and a streamed size cap (private; shared by the resource
toolkit and the client toolkit).

httpx's ``timeout`` bounds each network operation (connect, write, *each* read), not the
request: a server that sends one byte a second never trips a five-second read timeout and can
hold a request for as long as it likes. And ``response.content`` holds the whole body before
anyone can look at its length. :func:`fetch` closes both gaps for every call the toolkits make on
their own behalf (discovery, JWKS, token, UserInfo, GitHub's API, introspection):

* **one deadline for the whole exchange** - connect, send, response headers and the streamed
  body - enforced with :func:`asyncio.timeout` around all of it (httpx's per-operation timeouts
  stay as well, set to the same value);
* **a size cap that holds while reading**: a ``Content-Length`` above the cap is refused before
  the body is read; otherwise the body is read chunk by chunk and reading stops as soon as the
  cap is passed, so memory stays within the cap plus one network chunk;
* **no decompression**: ``Accept-Encoding: identity`` is sent and a compressed body is refused, so
  the cap counts exactly the bytes held in memory (no decompression bomb);
* redirects are never followed.

Every failure is an :class:`OutboundError` whose ``detail`` names the URL and the reason; callers
turn it into their own error (``IssuerUnavailableError``, ``ProviderUnavailable``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["CHUNK_BYTES", "BoundedResponse", "OutboundError", "fetch"]

CHUNK_BYTES = 64 * 1024
"""The most httpcore reads from the socket at once: the cap can be overshot by this much."""


class OutboundError(Exception):
    """An outbound call that failed: unreachable, too slow, too large, or undecodable."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class BoundedResponse:
    """A response read completely within the deadline and the size cap."""

    status_code: int
    headers: httpx.Headers
    content: bytes


async def fetch(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    extensions: Mapping[str, object] | None = None,
) -> BoundedResponse:
    """``method url`` answered completely within ``deadline`` seconds and ``max_bytes`` bytes.

    Raises :class:`OutboundError` otherwise; the connection is closed as soon as a limit is hit.
    """
    sent_headers = {"Accept-Encoding": "identity", **(headers or {})}
    try:
        async with asyncio.timeout(deadline):
            async with http.stream(
                method,
                url,
                headers=sent_headers,
                data=data,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=httpx.Timeout(deadline),
                follow_redirects=False,
                extensions=dict(extensions) if extensions else None,
            ) as response:
                content = await _read_capped(response, url, max_bytes)
                return BoundedResponse(response.status_code, response.headers, content)
    except TimeoutError as exc:
        raise OutboundError(f"{method} {url}: no complete answer within {deadline:g} s") from exc
    except httpx.TimeoutException as exc:
        raise OutboundError(f"{method} {url}: {type(exc).__name__} ({deadline:g} s)") from exc
    except httpx.HTTPError as exc:
        raise OutboundError(f"{method} {url}: {type(exc).__name__}") from exc


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise OutboundError(f"{url}: compressed body ({encoding}) refused")
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise OutboundError(f"{url}: Content-Length {int(declared)} over the {max_bytes}-byte cap")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise OutboundError(f"{url}: body over the {max_bytes}-byte cap")
    return bytes(body)
