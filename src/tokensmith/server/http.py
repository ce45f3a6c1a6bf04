"""Small HTTP helpers shared by the routes: bounded bodies, JSON responses, cookies."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.core.params import check_form_content_type, parse_params

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class PayloadTooLarge(InvalidRequest):
    status_code = 413


def json_response(
    body: Mapping[str, object], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    merged = dict(NO_STORE)
    if headers:
        merged.update(headers)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=merged
    )


def error_response(exc: OAuthError) -> Response:
    return json_response(exc.body(), status=exc.status_code, headers=exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("invalid Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, *, limit: int, max_value_length: int) -> dict[str, str]:
    """A strictly parsed ``application/x-www-form-urlencoded`` body (``core.params``)."""
    check_form_content_type(request.headers.get("content-type"))
    body = await read_body(request, limit)
    return parse_params(body, max_value_length=max_value_length)


def single_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"the {name} header was sent more than once")
    return values[0] if values else None


def claimed_client_id(params: dict[str, str], authorization: str | None) -> str:
    """The client id a request claims (unauthenticated), as a rate-limit key."""
    if authorization is not None and authorization[:6].lower() == "basic ":
        try:
            return base64.b64decode(authorization[6:].strip()).decode("utf-8").split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return "malformed"
    return params.get("client_id", "anonymous")[:128]
