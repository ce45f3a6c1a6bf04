"""``POST /introspect`` (RFC 7662): parse the form, one core call (``core.introspection``),
render. Anything not active, or not the caller's business, is exactly ``{"active": false}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.errors import json_error
from tokensmith.server.http import json_response, lazy_transaction
from tokensmith.server.routes.client_form import read_client_form
from tokensmith.server.state import runtime


async def introspect(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await read_client_form(
            request, rt, endpoint=rt.settings.introspect_path, max_value_length=2 * MAX_TOKEN_LENGTH
        )
        async with (
            rt.server.authenticator.documents_resolved(
                form.params, form.authorization, rt.db.transaction
            ),
            lazy_transaction(rt.db) as stores,
        ):
            body = await rt.server.introspection.handle(
                form.params, form.authorization, stores, limit=form.limit
            )
    except OAuthError as exc:
        return json_error(request, exc)
    return json_response(body)
