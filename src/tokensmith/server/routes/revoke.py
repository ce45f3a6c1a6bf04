"""``POST /revoke`` (RFC 7009): the client authenticates and names a token; the answer is 200
whether or not the token was known (§2.2). ``token_type_hint`` is only a hint."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import token_status
from tokensmith.core.errors import InvalidRequest, OAuthError, UnsupportedTokenType
from tokensmith.server.errors import json_error
from tokensmith.server.routes.client_form import read_client_form
from tokensmith.server.state import runtime

HINTS = frozenset({"access_token", "refresh_token"})


async def revoke(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await read_client_form(
            request, rt, max_value_length=2 * token_status.MAX_TOKEN_LENGTH
        )
        params, authorization = form.params, form.authorization
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in HINTS:
            raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
        async with rt.db.transaction() as stores:
            client = await rt.server.authenticate_client(
                params, authorization, stores, limit=form.limit
            )
            await token_status.revoke(rt.server, client, token, stores)
    except OAuthError as exc:
        return json_error(request, exc)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})
