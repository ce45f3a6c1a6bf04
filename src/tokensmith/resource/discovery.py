"""Authorization server metadata discovery (RFC 8414; OpenID Connect Discovery 1.0 as fallback).

RFC 8414 §3 builds the metadata URL by inserting ``/.well-known/oauth-authorization-server``
between the host and the path of the issuer; many servers (tokensmith included) also serve it
appended to the issuer, so that form is tried next, then ``/.well-known/openid-configuration``
appended (OIDC Discovery §4). RFC 8414 §3.3: the ``issuer`` in the document must be identical to
the issuer we asked for, or the metadata is not used (mix-up and impersonation defence).

The whole discovery - every location tried, bodies included - has one deadline (``deadline``, 5 s
by default), and each document is read only up to ``MAX_METADATA_BYTES`` (:func:`._http.fetch`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from ._http import OutboundError, fetch
from .errors import IssuerUnavailableError

__all__ = ["AuthorizationServerMetadata", "discover", "metadata_urls"]

MAX_METADATA_BYTES = 256 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(5.0)
DEFAULT_DEADLINE = 5.0


@dataclass(frozen=True, slots=True)
class AuthorizationServerMetadata:
    """The fields of RFC 8414 metadata the resource server uses."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None
    authorization_endpoint: str | None
    token_endpoint: str | None
    raw: dict[str, Any]


def metadata_urls(issuer: str) -> list[str]:
    """Where to look for the metadata of ``issuer``, in order."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    base = issuer.rstrip("/")
    urls = [
        urlunsplit(
            (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
        ),
        base + "/.well-known/oauth-authorization-server",
        base + "/.well-known/openid-configuration",
    ]
    return list(dict.fromkeys(urls))


def _optional_url(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value else None


async def discover(
    http: httpx.AsyncClient,
    issuer: str,
    *,
    http_timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> AuthorizationServerMetadata:
    """Fetch and check the metadata of ``issuer``.

    Raises :class:`IssuerUnavailableError` when no location answers with a valid document whose
    ``issuer`` equals ``issuer`` byte for byte, or when ``deadline`` seconds pass first.
    ``http_timeout`` is kept for compatibility: its read timeout, when shorter, bounds each
    location too.
    """
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    per_location = http_timeout.read if http_timeout.read is not None else deadline
    for url in metadata_urls(issuer):
        remaining = ends_at - loop.time()
        if remaining <= 0:
            problems.append(f"{url}: not tried, the {deadline:g} s deadline passed")
            break
        try:
            response = await fetch(
                http,
                "GET",
                url,
                deadline=min(remaining, per_location),
                max_bytes=MAX_METADATA_BYTES,
                headers={"Accept": "application/json"},
            )
        except OutboundError as exc:
            problems.append(exc.detail)
            continue
        if response.status_code != 200:
            problems.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            problems.append(f"{url}: not JSON")
            continue
        if not isinstance(document, dict):
            problems.append(f"{url}: not a JSON object")
            continue
        if document.get("issuer") != issuer:
            # RFC 8414 §3.3: a mismatch is an error, not a reason to try the next location.
            raise IssuerUnavailableError(
                f"metadata at {url} names issuer {document.get('issuer')!r}, expected {issuer!r}"
            )
        return AuthorizationServerMetadata(
            issuer=issuer,
            jwks_uri=_optional_url(document, "jwks_uri"),
            introspection_endpoint=_optional_url(document, "introspection_endpoint"),
            authorization_endpoint=_optional_url(document, "authorization_endpoint"),
            token_endpoint=_optional_url(document, "token_endpoint"),
            raw=document,
        )
    raise IssuerUnavailableError("no authorization server metadata: " + "; ".join(problems))
