"""Redirect URIs: what may be registered and how a requested one is matched.

- RFC 9700 §2.1 and §4.1.3, OAuth 2.1 §2.3.1: exact string comparison (RFC 3986 §6.2.1).
- RFC 8252 §7.3: for native apps, a loopback IP redirect matches on any port.
- RFC 9700 §2.6 / OAuth 2.1 §2.3.1: no plain ``http`` except for loopback; no fragments
  (RFC 6749 §3.1.2).
- RFC 8252 §7.1: native apps may use a private-use scheme in reverse-domain form.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlsplit

from tokensmith.core.errors import InvalidRedirectUri

MAX_LENGTH = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# [0-9], not \d: \d also matches non-ASCII digits (Arabic-Indic, full-width), which int() accepts.
_LOOPBACK_IP_NETLOC = re.compile(r"(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?")
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _is_valid_host(host: str) -> bool:
    """A DNS name (ASCII labels, IDNs in their ``xn--`` form) or an IP address: never a host
    with ``%``, ``@`` or other characters that parsers disagree on (Keycloak CVE-2026-7504)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None
    return True


def check_registrable(uri: str, *, native: bool) -> str:
    """Raise ``invalid_redirect_uri`` unless ``uri`` may be registered; return it unchanged."""
    if not uri or len(uri) > MAX_LENGTH:
        raise InvalidRedirectUri("a redirect URI must be 1 to 2000 characters")
    if not uri.isprintable() or " " in uri or "\\" in uri:
        raise InvalidRedirectUri("a redirect URI must not hold spaces or control characters")
    if "*" in uri:
        raise InvalidRedirectUri("wildcards are not allowed in redirect URIs")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidRedirectUri(f"not a valid URI: {uri!r}") from None
    if "#" in uri:
        raise InvalidRedirectUri("a redirect URI must not contain a fragment")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not _is_valid_host(parts.hostname or ""):
        raise InvalidRedirectUri("a redirect URI needs a valid host name or IP address")
    if scheme == "https":
        if not parts.hostname:
            raise InvalidRedirectUri("an https redirect URI needs a host")
    elif scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise InvalidRedirectUri(
                "http redirect URIs are allowed only for loopback hosts "
                "(127.0.0.1, [::1], localhost); use https"
            )
    elif native and _PRIVATE_SCHEME.fullmatch(scheme):
        if parts.netloc:
            raise InvalidRedirectUri(
                "a private-use scheme redirect URI has no host (RFC 8252 §7.1)"
            )
    else:
        raise InvalidRedirectUri(
            "a redirect URI must be https, http on a loopback host, or (native apps) "
            "a reverse-domain private-use scheme"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectUri("a redirect URI must not contain user information")
    if port == 0:
        raise InvalidRedirectUri("port 0 is not a valid port")
    return uri


def _loopback_without_port(uri: str) -> str | None:
    """``http://127.0.0.1/cb`` for ``http://127.0.0.1:5000/cb``; ``None`` for other URIs."""
    if not uri.startswith("http://"):
        return None
    rest = uri[len("http://") :]
    end = len(rest)
    for sep in "/?#":
        idx = rest.find(sep)
        if idx != -1:
            end = min(end, idx)
    netloc, tail = rest[:end], rest[end:]
    match = _LOOPBACK_IP_NETLOC.fullmatch(netloc)
    if match is None or "#" in tail:
        return None
    port = match.group(2)
    if port is not None and not 0 < int(port) < 65536:
        return None
    return f"http://{match.group(1)}{tail}"


def is_match(requested: str, registered: str, *, native: bool) -> bool:
    """Whether ``requested`` matches ``registered``: character for character, except that a
    native client's loopback IP redirect matches on any port."""
    if requested == registered:
        return True
    if not native:
        return False
    registered_base = _loopback_without_port(registered)
    return registered_base is not None and _loopback_without_port(requested) == registered_base


def find_match(requested: str, registered: Iterable[str], *, native: bool) -> str | None:
    """The registered URI that ``requested`` matches, if any."""
    for candidate in registered:
        if is_match(requested, candidate, native=native):
            return candidate
    return None


def redirect_url(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The redirect URI with response parameters appended to its query (RFC 6749 §4.1.2)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not query:
        return redirect_uri  # exactly the registered URI, no dangling "?"
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{query}"
