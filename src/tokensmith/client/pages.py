"""The error page: a small page with the look of the authorization server's pages, rendered by a
tiny renderer that escapes every value (no template engine needed).

Its one ``<style>`` block is allowed by its SHA-256 in the Content-Security-Policy, not by
``'unsafe-inline'``: nothing else inline can run or style the page. An app that wants its own
page passes ``error_page=`` to :class:`~tokensmith.client.ClientAuth`: a function that gets an
:class:`ErrorPage` and returns the response.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape

from tokensmith.client.errors import LoginError

__all__ = ["PAGE_HEADERS", "ErrorPage", "render_error_page"]

# The same palette and card as the server's tokensmith.css (light and dark).
_STYLE = (
    ":root{color-scheme:light dark;--fg:#1b1f24;--bg:#f4f6f8;--card:#fff;--accent:#0b5cad;"
    "--muted:#4a5560;--error:#a4001a;--border:#c9d1d9}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--card:#161b22;"
    "--accent:#4c9aff;--muted:#b0bac4;--error:#ff8c95;--border:#30363d}}"
    "*{box-sizing:border-box}"
    "body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;"
    'background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",'
    "sans-serif}"
    ".card{background:var(--card);width:min(440px,100% - 2rem);margin:1rem;padding:2rem;"
    "border:1px solid var(--border);border-radius:12px}"
    "h1{font-size:1.4rem;margin:0 0 .5rem}"
    ".error{color:var(--error);font-weight:600}"
    "a{color:var(--accent)}"
    ".fine{color:var(--muted);font-size:.875rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

PAGE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main class="card">
<h1>{title}</h1>
<p class="error" role="alert">{message}</p>
<p><a href="{retry_url}">{retry_label}</a></p>
<p class="fine">Error: {code}</p>
</main>
</body>
</html>
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorPage:
    """What an error page shows: ``title`` and ``message`` are for the person (never a
    provider's raw text), ``code`` names the error class, ``retry_url`` leads back into the app;
    ``error`` is the :class:`~tokensmith.client.LoginError` itself (its ``detail`` is for logs,
    not for the page)."""

    status_code: int
    title: str
    message: str
    code: str
    retry_url: str
    retry_label: str
    error: LoginError


def render_error_page(
    *, title: str, message: str, code: str, retry_url: str, retry_label: str = "Back"
) -> str:
    return _PAGE.format(
        title=escape(title),
        style=_STYLE,
        message=escape(message),
        code=escape(code),
        retry_url=escape(retry_url, quote=True),
        retry_label=escape(retry_label),
    )
