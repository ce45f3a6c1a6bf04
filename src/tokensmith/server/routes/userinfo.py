"""``GET|POST /userinfo`` (OpenID Connect Core §5.3) with RFC 6750 bearer tokens: read the
token, one core call (``core.userinfo``), render.

The token comes from the ``Authorization`` header, or for POST from the form body (RFC 6750
§2.2), never from the query string. Errors carry ``WWW-Authenticate`` (RFC 6750 §3).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import InsufficientScope, InvalidRequest, InvalidToken, OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.http import json_response, lazy_transaction, read_form, single_header
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

REALM = 'Bearer realm="tokensmith"'


def _challenge(exc: OAuthError | None) -> Response:
    if exc is None:
        return Response(status_code=401, headers={"WWW-Authenticate": REALM})
    value = f'{REALM}, error="{exc.error}"'
    if exc.description:
        value += f', error_description="{exc.description}"'
    if isinstance(exc, InsufficientScope):
        value += ', scope="openid"'
    headers = {**exc.headers, "WWW-Authenticate": value}
    return json_response(exc.body(), status=exc.status_code, headers=headers)


async def _bearer(request: Request, rt: Runtime) -> str | None:
    """The access token of the request; a POST body is read whole (under ``max_form_bytes``
    and ``form_read_timeout``) before the transaction opens."""
    header = single_header(request, "authorization")
    body_token = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await read_form(
            request,
            limit=rt.settings.max_form_bytes,
            max_value_length=MAX_TOKEN_LENGTH,
            time_limit=rt.settings.form_read_timeout,
        )
        body_token = form.get("access_token")
    if header is not None:
        if body_token is not None:
            raise InvalidRequest("send the token in one place only")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidToken("use the Bearer scheme")
        return value.strip()
    return body_token


async def userinfo_endpoint(request: Request) -> Response:
    rt = runtime(request)
    try:
        token = await _bearer(request, rt)
        if token is None:
            return _challenge(None)
        async with lazy_transaction(rt.db) as stores:
            claims = await rt.server.userinfo.handle(token, stores)
    except OAuthError as exc:
        return _challenge(exc)
    return json_response(claims)
