"""``POST /revoke`` (RFC 7009): parse the form, one core call (``core.revocation``), render.
The answer is 200 whether or not the token was known (§2.2). Written against ASGI
(``client_form``)."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from tokensmith.core.errors import OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.http import lazy_transaction
from tokensmith.server.routes.client_form import read_client_form, runtime_of, send_error

_REVOKED = [(b"cache-control", b"no-store"), (b"content-length", b"0")]
"""What ``Response(status_code=200, headers={"Cache-Control": "no-store"})`` sends."""


async def revoke(scope: Scope, receive: Receive, send: Send) -> None:
    rt = runtime_of(scope)
    try:
        form = await read_client_form(
            scope,
            receive,
            rt,
            endpoint=rt.settings.revoke_path,
            max_value_length=2 * MAX_TOKEN_LENGTH,
        )
        async with (
            rt.server.authenticator.documents_resolved(
                form.params, form.authorization, rt.db.transaction
            ),
            lazy_transaction(rt.db) as stores,
        ):
            await rt.server.revocation.handle(
                form.params, form.authorization, stores, limit=form.limit
            )
    except OAuthError as exc:
        await send_error(scope, receive, send, exc)
        return
    await send({"type": "http.response.start", "status": 200, "headers": list(_REVOKED)})
    await send({"type": "http.response.body", "body": b""})
