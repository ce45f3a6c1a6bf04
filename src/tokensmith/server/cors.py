"""CORS for the endpoints a browser app calls with ``fetch``: token, revocation and userinfo.

A single-page app (a public client) redeems its code, refreshes and revokes its tokens, and reads
UserInfo from JavaScript on another origin; without CORS the browser hides the answers from it.
Everything else stays closed:

- Only origins on an explicit allowlist (``TOKENSMITH_CORS_ORIGINS``, a JSON list such as
  ``'["https://spa.example"]'``): exact ``scheme://host[:port]``, never ``*`` or ``null``.
- Never credentials (``Access-Control-Allow-Credentials`` is not sent): these endpoints take
  client credentials or bearer tokens in the request, never the server's cookies.
- Never ``/authorize``, the login, consent and logout pages, introspection or anything else: those
  are navigations or server-to-server calls (OAuth 2.0 for Browser-Based Apps §6, RFC 9700 §4.16).
- A preflight from an origin, method or header outside the allowlist gets 403 and no CORS header.

The CORS logic is Starlette's ``CORSMiddleware``, one instance per path (:class:`EndpointCors`);
this module keeps only the allowlist setting, the per-path scoping and the preflight answers
(204 / 403 instead of Starlette's 200 / 400).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CorsSettings", "EndpointCors", "check_origin"]

# X-Requested-With: Swagger UI sends it with its token request (PKCE sign-in from the API docs).
# (Starlette adds the CORS-safelisted Accept, Accept-Language, Content-Language.)
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Requested-With")
MAX_AGE = 600


def check_origin(value: str) -> str:
    """An exact web origin, ``scheme://host[:port]``; raises ``ValueError`` otherwise."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "*" in value
    ):
        raise ValueError(f"{value!r} is not an origin such as https://app.example")
    return f"{parts.scheme}://{parts.netloc}".lower()


class CorsSettings(BaseSettings):
    """``TOKENSMITH_CORS_ORIGINS``: the browser origins allowed to call token, revocation and
    userinfo (a JSON list). Empty by default: no CORS at all."""

    model_config = SettingsConfigDict(
        env_prefix="TOKENSMITH_", env_file=".env", extra="ignore", frozen=True
    )

    cors_origins: tuple[str, ...] = Field(default=())

    @field_validator("cors_origins")
    @classmethod
    def _check(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_origin(origin) for origin in value)


class _PathCors(CORSMiddleware):
    """Starlette's CORS for one path, with this server's preflight answers: 204 and no body when
    the origin, method and headers are allowed; otherwise 403 and no CORS header at all
    (Starlette answers 200 / 400 and lists the allowed methods even to a refused origin).
    Preflights are never cached by intermediaries (``Cache-Control: no-store``)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        # Empty items of Access-Control-Request-Headers ("", "content-type, ") name no header:
        # Starlette would refuse them as a header outside the list.
        requested = [
            h.strip()
            for h in request_headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        ]
        raw = [(k, v) for k, v in request_headers.raw if k != b"access-control-request-headers"]
        if requested:
            raw.append((b"access-control-request-headers", ", ".join(requested).encode("latin-1")))
        answer = super().preflight_response(Headers(raw=raw))
        if answer.status_code != 200:
            return Response(
                status_code=403, headers={"Vary": "Origin", "Cache-Control": "no-store"}
            )
        allowed = {
            k: v
            for k, v in answer.headers.items()
            if k.startswith("access-control-") or k == "vary"
        }
        return Response(status_code=204, headers={**allowed, "Cache-Control": "no-store"})


class EndpointCors:
    """Pure ASGI middleware scoping CORS to ``paths`` (path -> allowed methods): Starlette's
    ``CORSMiddleware`` applies to a whole app, so each path gets its own instance (its own
    allowed methods) and every other path goes straight to the app."""

    def __init__(
        self, app: ASGIApp, *, origins: Iterable[str], paths: dict[str, tuple[str, ...]]
    ) -> None:
        self._app = app
        allowed = tuple(sorted({check_origin(origin) for origin in origins}))
        self.by_path: dict[str, _PathCors] = (
            {
                path: _PathCors(
                    app,
                    allow_origins=allowed,
                    allow_methods=methods,
                    allow_headers=ALLOWED_HEADERS,
                    expose_headers=("WWW-Authenticate",),
                    max_age=MAX_AGE,
                )
                for path, methods in paths.items()
            }
            if allowed
            else {}
        )

    @property
    def app(self) -> ASGIApp:
        return self._app

    @app.setter
    def app(self, app: ASGIApp) -> None:
        """The inner app of this layer and of each path's CORS layer: re-pointing it (as the
        fast path does with the innermost middleware, ``server/fastpath.py``) re-points all."""
        self._app = app
        for cors in self.by_path.values():
            cors.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cors = None
        if scope["type"] == "http":
            # the path below the root path, as the router matches it (behind a proxy that
            # serves the server under a prefix, ``scope["path"]`` starts with the prefix)
            path = get_route_path(scope) if scope.get("root_path") else scope["path"]
            cors = self.by_path.get(path)
        await (cors or self._app)(scope, receive, send)
