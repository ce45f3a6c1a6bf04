"""``POST /revoke`` (RFC 7009): parse the form, one core call (``core.revocation``), render.
The answer is 200 whether or not the token was known (§2.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.errors import json_error
from tokensmith.server.http import lazy_transaction
from tokensmith.server.routes.client_form import read_client_form
from tokensmith.server.state import runtime


async def revoke(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await read_client_form(
            request, rt, endpoint=rt.settings.revoke_path, max_value_length=2 * MAX_TOKEN_LENGTH
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
        return json_error(request, exc)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})
