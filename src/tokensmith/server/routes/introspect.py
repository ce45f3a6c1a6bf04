"""``POST /introspect`` (RFC 7662): for authenticated clients. Anything not active, or not the
caller's business, is exactly ``{"active": false}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import token_status
from tokensmith.core.errors import InvalidClient, InvalidRequest, OAuthError
from tokensmith.server.errors import json_error
from tokensmith.server.http import json_response
from tokensmith.server.routes.client_form import read_client_form
from tokensmith.server.state import runtime


async def introspect(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await read_client_form(
            request, rt, max_value_length=2 * token_status.MAX_TOKEN_LENGTH
        )
        params, authorization = form.params, form.authorization
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        async with rt.db.transaction() as stores:
            client = await rt.server.authenticate_client(
                params, authorization, stores, limit=form.limit
            )
            if not client.is_confidential:
                raise InvalidClient("public clients cannot introspect tokens")
            body = await token_status.introspect(rt.server, client, token, stores)
    except OAuthError as exc:
        return json_error(request, exc)
    return json_response(body)
