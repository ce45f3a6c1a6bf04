"""``POST /register`` (RFC 7591) and ``GET``/``PUT``/``DELETE /register/{client_id}`` (RFC 7592):
rate limit per address, read the JSON body under the form limits, one core call
(``core.dynamic_registration``), render. Mounted only when ``registration`` is not ``off``."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import InvalidClientMetadata, InvalidRequest, OAuthError
from tokensmith.server.errors import json_error
from tokensmith.server.http import json_response, lazy_transaction, read_body, single_header
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _forget(rt: Runtime, client_id: str) -> None:
    """After an update or a deletion is committed: the client leaves this process's cache again.
    The core forgot it when it made the change, inside the transaction; a request that loaded it
    between then and the commit read it as it was (the committed row) and cached it."""
    rt.server.client_cache.invalidate(client_id)


async def _json(request: Request) -> object:
    rt = runtime(request)
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise InvalidRequest("the body is application/json (RFC 7591 §3.1)")
    body = await read_body(
        request, rt.settings.max_form_bytes, time_limit=rt.settings.form_read_timeout
    )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidClientMetadata("the body is not JSON") from None


async def register(request: Request) -> Response:
    rt = runtime(request)
    address = _address(request)
    try:
        await rt.rate_limiter.count_registration(address)
        authorization = single_header(request, "authorization")
        body = await _json(request)
        async with lazy_transaction(rt.db) as stores:
            answer = await rt.server.registration.register(
                body, authorization, stores, address=address
            )
    except OAuthError as exc:
        return json_error(request, exc)
    return json_response(answer.body, status=answer.status)


async def read_registration(request: Request) -> Response:
    rt = runtime(request)
    try:
        authorization = single_header(request, "authorization")
        async with lazy_transaction(rt.db) as stores:
            answer = await rt.server.registration.read(
                request.path_params["client_id"], authorization, stores
            )
    except OAuthError as exc:
        return json_error(request, exc)
    return json_response(answer.body, status=answer.status)


async def update_registration(request: Request) -> Response:
    rt = runtime(request)
    try:
        authorization = single_header(request, "authorization")
        body = await _json(request)
        async with lazy_transaction(rt.db) as stores:
            answer = await rt.server.registration.update(
                request.path_params["client_id"],
                authorization,
                body,
                stores,
                address=_address(request),
            )
    except OAuthError as exc:
        return json_error(request, exc)
    _forget(rt, request.path_params["client_id"])
    return json_response(answer.body, status=answer.status)


async def delete_registration(request: Request) -> Response:
    rt = runtime(request)
    try:
        authorization = single_header(request, "authorization")
        async with lazy_transaction(rt.db) as stores:
            await rt.server.registration.delete(
                request.path_params["client_id"], authorization, stores, address=_address(request)
            )
    except OAuthError as exc:
        return json_error(request, exc)
    _forget(rt, request.path_params["client_id"])
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
