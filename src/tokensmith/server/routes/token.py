"""``POST /token`` (RFC 6749 §3.2, §5). The hot path: written against ASGI (``client_form``),
the form read once, no validation models, orjson out, ``Cache-Control: no-store``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.server.errors import json_error
from tokensmith.server.http import lazy_transaction, send_json
from tokensmith.server.routes.client_form import read_client_form, runtime_of, send_error


async def token(scope: Scope, receive: Receive, send: Send) -> None:
    rt = runtime_of(scope)
    try:
        form = await read_client_form(
            scope,
            receive,
            rt,
            endpoint=rt.settings.token_path,
            max_value_length=rt.settings.max_param_length,
        )
        params, authorization = form.params, form.authorization
        # a metadata-document client is fetched first, with no database connection held
        async with (
            rt.server.authenticator.documents_resolved(params, authorization, rt.db.transaction),
            lazy_transaction(rt.db) as stores,
        ):
            result = await rt.server.token_endpoint.handle(
                params, authorization, stores, limit=form.limit
            )
    except OAuthError as exc:
        await send_error(scope, receive, send, exc)
        return
    scope["app"].state.metrics.token_issued(params["grant_type"])
    await send_json(send, result.body())


async def token_get(request: Request) -> Response:
    """GET is refused: credentials and codes never travel in a URL (RFC 6749 §3.2)."""
    return json_error(
        request,
        _MethodNotAllowed("the token endpoint accepts POST only", headers={"Allow": "POST"}),
    )


class _MethodNotAllowed(InvalidRequest):
    status_code = 405
