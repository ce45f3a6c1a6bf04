"""``/.well-known/oauth-authorization-server`` (RFC 8414), ``/.well-known/openid-configuration``
(OpenID Connect Discovery 1.0; the same document) and the JWKS (RFC 7517)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.http import json_response
from tokensmith.server.state import runtime


async def authorization_server_metadata(request: Request) -> Response:
    rt = runtime(request)
    return json_response(rt.metadata, headers={"Cache-Control": "public, max-age=3600"})


async def jwks(request: Request) -> Response:
    rt = runtime(request)
    return json_response(
        rt.server.keys.jwks(rt.server.now()),
        headers={"Cache-Control": f"public, max-age={rt.settings.jwks_max_age}"},
    )
