"""``POST /introspect`` (RFC 7662): parse the form, one core call (``core.introspection``),
render. Anything not active, or not the caller's business, is exactly ``{"active": false}``.
Written against ASGI (``client_form``)."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from tokensmith.core.errors import OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.http import lazy_transaction, send_json
from tokensmith.server.routes.client_form import read_client_form, runtime_of, send_error


async def introspect(scope: Scope, receive: Receive, send: Send) -> None:
    rt = runtime_of(scope)
    try:
        form = await read_client_form(
            scope,
            receive,
            rt,
            endpoint=rt.settings.introspect_path,
            max_value_length=2 * MAX_TOKEN_LENGTH,
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
        await send_error(scope, receive, send, exc)
        return
    await send_json(send, body)
