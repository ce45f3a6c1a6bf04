"""The error page: a tiny renderer that escapes every value (no template engine needed)."""

from __future__ import annotations

from html import escape

__all__ = ["PAGE_HEADERS", "render_error_page"]

PAGE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
line-height:1.5;color:#222}}h1{{font-size:1.4rem}}.code{{color:#777;font-size:.85rem}}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{message}</p>
<p><a href="{retry_url}">{retry_label}</a></p>
<p class="code">Error: {code}</p>
</main>
</body>
</html>
"""


def render_error_page(
    *, title: str, message: str, code: str, retry_url: str, retry_label: str = "Back"
) -> str:
    return _PAGE.format(
        title=escape(title),
        message=escape(message),
        code=escape(code),
        retry_url=escape(retry_url, quote=True),
        retry_label=escape(retry_label),
    )
