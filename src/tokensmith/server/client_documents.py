"""Fetching Client ID Metadata Documents safely: the edge half of
``tokensmith.core.metadata_document`` (its ``DocumentFetcher`` port).

A client ID URL is chosen by whoever starts an authorization request, so fetching it is a
server-side request forgery risk. The rules (each tested in
tests/security/test_client_metadata_documents.py):

* **addresses checked after DNS resolution, and the connection made to the checked address**:
  the host is resolved once; every address it resolves to must be public (not private,
  loopback, link-local, multicast, unspecified, reserved, shared/CGNAT, documentation, nor an
  IPv6 form of one: IPv4-mapped, 6to4, Teredo); the request then goes to that IP literal with
  the original ``Host`` header and TLS server name, so the certificate is verified for the
  host name and a second DNS answer (DNS rebinding) is never asked for. Loopback addresses only
  under ``TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK``;
* **no redirects** (a 3xx is refused), **no proxies** (``trust_env`` off: a proxy would make its
  own DNS lookup), **a size cap** and **one deadline** over resolution, connection and body
  (``tokensmith.resource._http.fetch``), no compressed bodies;
* **a JSON answer with status 200** only;
* **HTTPS trusts the system store** (``ssl.create_default_context``, which honours
  ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``), not a bundled one;
* **cached per HTTP caching rules with an upper bound**: ``no-store``/``no-cache`` are not kept,
  ``max-age`` is honoured up to ``TOKENSMITH_CLIENT_METADATA_MAX_CACHE``, 5 minutes without one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from tokensmith.core.metadata_document import DocumentError, FetchedDocument
from tokensmith.resource._http import OutboundError, fetch

__all__ = [
    "HttpDocumentFetcher",
    "Resolver",
    "address_refusal",
    "cache_lifetime",
    "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the IP addresses it resolves to (injectable for tests)."""

DEFAULT_LIFETIME = 300
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be connected to, or ``None`` when it may."""
    try:
        ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            if ip.ipv4_mapped is None:
                return f"{address} is a tunnelled IPv6 address (6to4 or Teredo)"
            ip = embedded
    if ip.is_loopback:
        return None if allow_loopback else f"{address} is a loopback address"
    if (
        ip.is_unspecified
        or ip.is_multicast
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or not ip.is_global
    ):
        return f"{address} is not a public address"
    return None


def cache_lifetime(cache_control: str | None, *, upper: int) -> int:
    """Seconds a document may be reused (RFC 9111 §5.2.2, the directives that matter here)."""
    lifetime = DEFAULT_LIFETIME
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache", "private"):
            return 0
        if name == "max-age":
            value = value.strip().strip('"')
            lifetime = int(value) if value.isascii() and value.isdigit() else 0
    return max(0, min(lifetime, upper))


class HttpDocumentFetcher:
    def __init__(
        self,
        *,
        allow_loopback: bool,
        max_bytes: int,
        timeout: float,
        max_cache: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_cache = max_cache
        self.resolver = resolver
        self._tls: ssl.SSLContext | None = None  # made at the first fetch (about 20 ms)

    async def fetch(self, url: str) -> FetchedDocument:
        parts = urlsplit(url)
        host = parts.hostname
        if host is None or parts.scheme not in ("https", "http"):
            raise DocumentError("a client ID URL is an https URL with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self.timeout):
                address = await self._checked_address(host, port)
                literal = f"[{address}]" if ":" in address else address
                pinned = urlunsplit(
                    (parts.scheme, f"{literal}:{port}", parts.path, parts.query, "")
                )
                if self._tls is None:
                    self._tls = ssl.create_default_context()  # the system store; SSL_CERT_FILE
                async with httpx.AsyncClient(verify=self._tls, trust_env=False) as http:
                    response = await fetch(
                        http,
                        "GET",
                        pinned,
                        deadline=self.timeout,
                        max_bytes=self.max_bytes,
                        headers={"Host": parts.netloc, "Accept": "application/json"},
                        extensions={"sni_hostname": host} if parts.scheme == "https" else None,
                    )
        except TimeoutError:
            raise DocumentError(f"{url}: no complete answer within {self.timeout:g} s") from None
        except OutboundError as exc:
            raise DocumentError(exc.detail.replace(pinned, url)) from None
        if 300 <= response.status_code < 400:
            raise DocumentError(f"{url}: answered with a redirect, which is not followed")
        if response.status_code != 200:
            raise DocumentError(f"{url}: answered {response.status_code}")
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise DocumentError(f"{url}: not served as application/json")
        lifetime = cache_lifetime(response.headers.get("cache-control"), upper=self.max_cache)
        return FetchedDocument(body=response.content, max_age=lifetime)

    async def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = await self.resolver(host, port)
        except OSError:
            raise DocumentError(f"{host} cannot be resolved") from None
        if not addresses:
            raise DocumentError(f"{host} cannot be resolved")
        for address in addresses:
            refusal = address_refusal(address, allow_loopback=self.allow_loopback)
            if refusal is not None:
                raise DocumentError(f"{host} resolves to a refused address: {refusal}")
        return addresses[0]
