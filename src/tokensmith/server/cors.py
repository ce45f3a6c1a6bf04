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
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CorsSettings", "EndpointCors", "check_origin"]

# X-Requested-With: Swagger UI sends it with its token request (PKCE sign-in from the API docs).
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "x-requested-with"})
MAX_AGE = "600"


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


class EndpointCors:
    """Pure ASGI middleware answering CORS for ``paths`` (path -> allowed methods) only."""

    def __init__(
        self, app: ASGIApp, *, origins: Iterable[str], paths: dict[str, tuple[str, ...]]
    ) -> None:
        self.app = app
        self.origins = frozenset(check_origin(origin) for origin in origins)
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        methods = self.paths[scope["path"]]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin, methods, headers)
            return
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-expose-headers", b"WWW-Authenticate"),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self,
        send: Send,
        origin: str | None,
        methods: tuple[str, ...],
        headers: dict[str, str],
    ) -> None:
        requested = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        allowed = (
            origin
            if origin in self.origins
            and headers["access-control-request-method"] in methods
            and requested <= ALLOWED_HEADERS
            else None
        )
        out: list[tuple[bytes, bytes]] = [
            (b"vary", b"Origin"),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        if allowed is not None:
            out += [
                (b"access-control-allow-origin", allowed.encode("latin-1")),
                (b"access-control-allow-methods", ", ".join(methods).encode()),
                (b"access-control-allow-headers", b"Authorization, Content-Type, X-Requested-With"),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
        await send(
            {
                "type": "http.response.start",
                "status": 204 if allowed is not None else 403,
                "headers": out,
            }
        )
        await send({"type": "http.response.body", "body": b""})
