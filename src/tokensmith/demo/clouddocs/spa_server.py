"""A tiny static server for the CloudDocs single-page app (``spa/``), plus its ``/config.json``.

The SPA has no build step: plain JavaScript modules served as they are. The server adds a strict
CSP - scripts from this origin only (no inline script), ``fetch`` only to this origin, the
authorization server and the CloudDocs API - and refuses to be framed.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SpaConfig", "create_spa"]

SPA_DIR = Path(__file__).parent / "spa"
FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaConfig:
    """What the SPA needs to know (served as ``/config.json``; nothing secret: a public client).

    The endpoints are given rather than discovered: the authorization server allows CORS on its
    token, revocation and userinfo endpoints only, not on its metadata."""

    issuer: str
    client_id: str
    redirect_uri: str
    post_logout_redirect_uri: str
    api_url: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    userinfo_endpoint: str
    end_session_endpoint: str
    scope: str = "openid profile offline_access docs:read docs:write"

    @classmethod
    def for_tokensmith(
        cls, *, issuer: str, client_id: str, spa_url: str, api_url: str
    ) -> "SpaConfig":
        """The configuration for a tokensmith server with its default endpoint paths."""
        return cls(
            issuer=issuer,
            client_id=client_id,
            redirect_uri=f"{spa_url}/",
            post_logout_redirect_uri=f"{spa_url}/",
            api_url=api_url,
            authorization_endpoint=f"{issuer}/authorize",
            token_endpoint=f"{issuer}/token",
            revocation_endpoint=f"{issuer}/revoke",
            userinfo_endpoint=f"{issuer}/userinfo",
            end_session_endpoint=f"{issuer}/logout",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _Headers:
    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-cache"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def create_spa(config: SpaConfig) -> ASGIApp:
    async def config_json(request: Request) -> Response:
        return JSONResponse(asdict(config))

    async def favicon(request: Request) -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    app = Starlette(
        routes=[
            Route("/config.json", config_json),
            Route("/favicon.ico", favicon),
            Mount("/", StaticFiles(directory=SPA_DIR, html=True)),
        ]
    )
    connect = " ".join(dict.fromkeys(["'self'", _origin(config.issuer), _origin(config.api_url)]))
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return _Headers(app, csp)
