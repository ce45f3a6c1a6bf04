"""Security headers on every response: :class:`SecurityHeaders` says which a response gets;
the server's outermost layer (:class:`~tokensmith.server.observability.Observability`) adds them
to every answer, the 500 handler's included.

HTML pages: a strict CSP (no inline script or style, ``frame-ancestors 'none'``),
``X-Frame-Options: DENY``, ``Cache-Control: no-store`` (also on every redirect: their
``Location`` carries codes and interaction ids). Every response: ``nosniff`` and
``Referrer-Policy: no-referrer`` (pages carry codes and interaction ids); HSTS when the issuer is
https. No ``form-action`` directive: Chromium applies it to the redirect that follows a form post,
which must reach the client's redirect URI.
"""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SCRIPT_CSP = CSP + "; script-src 'self'; connect-src 'self'"
"""The CSP of the pages that run the passkey script (``/static/passkeys.js``): the login page,
the second step when the user has a passkey, and the account page. No inline script anywhere;
every other page keeps :data:`CSP`, with no script at all."""


API_CSP = b"default-src 'none'; frame-ancestors 'none'"
"""The CSP of every response that is not a page: nothing may load it, or be loaded by it."""


def common_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers of every response: no sniffing, no referrer, no framing; HSTS when the
    issuer is https."""
    common = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if https:
        common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return common


def api_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """The security headers of a response that is not a page or a redirect: those of
    :func:`common_headers` and :data:`API_CSP`. Also those of the answers the HTTP protocols
    write themselves, before any application runs (:mod:`tokensmith.server.protocols`)."""
    return [*common_headers(https=https), (b"content-security-policy", API_CSP)]


class SecurityHeaders:
    """The security headers of a response, by its status and its own headers (:meth:`headers`)."""

    def __init__(self, *, https: bool) -> None:
        self.common = common_headers(https=https)
        self.html = [
            (b"content-security-policy", CSP.encode()),
            (b"cache-control", b"no-store"),
        ]
        self.api = api_headers(https=https)
        """What :meth:`headers` adds to a response that is not a page or a redirect and sets
        none of these headers itself (every API answer): appended as they are."""
        self._own = frozenset(name for name, _ in self.api)

    def headers(self, status: int, given: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``given`` (a response's raw headers) with the security headers it lacks."""
        content_type = b""
        plain = not 300 <= status < 400
        for name, value in given:
            lower = name.lower()
            if lower == b"content-type":
                if not content_type:
                    content_type = value
            elif lower in self._own:
                plain = False
        if plain and not content_type.startswith(b"text/html"):
            return [*given, *self.api]
        return self._merged(status, given)

    def _merged(self, status: int, given: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The general case: a page, a redirect, or a response that sets some of the headers."""
        headers = list(given)
        names = {name.lower() for name, _ in headers}
        headers.extend(h for h in self.common if h[0] not in names)
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html") or b"content-security-policy" in names:
            headers.extend(h for h in self.html if h[0] not in names)
        else:
            headers.append((b"content-security-policy", API_CSP))
        if 300 <= status < 400 and b"cache-control" not in names:
            # Redirects carry authorization codes, errors and interaction ids in Location.
            headers.append((b"cache-control", b"no-store"))
        return headers
