"""Small HTTP helpers shared by the routes: bounded bodies, JSON responses, cookies.

A request body is read whole, under a size cap and a total deadline, *before* a route opens a
database transaction: a client that sends its body slowly (a byte a second) then holds one
coroutine and its socket, never a database connection that other requests wait for.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Send

from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.core.params import check_form_content_type, parse_params

if TYPE_CHECKING:
    from tokensmith.core.ports import Stores
    from tokensmith.storage.compose import Database, RequestStores

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

T = TypeVar("T")


class PayloadTooLarge(InvalidRequest):
    status_code = 413


class RequestTimeout(InvalidRequest):
    """The body did not arrive within the deadline (RFC 9110 §15.5.9): 408, and the connection
    is closed (``Connection: close``), since the rest of the body is never read."""

    status_code = 408

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"Connection": "close"})


_NO_STORE_RAW = [
    (name.lower().encode("latin-1"), v.encode("latin-1")) for name, v in NO_STORE.items()
]


class _NoStoreJson(Response):
    """A JSON ``Response`` with ``NO_STORE``, its header list built directly: the same headers,
    in the same order, as ``Response(..., media_type="application/json", headers=NO_STORE)``
    (tested), without ``init_headers``'s general case on every token response."""

    media_type = "application/json"

    def __init__(self, content: bytes, status_code: int) -> None:
        self.status_code = status_code
        self.background = None
        self.body = content
        self.raw_headers = [
            *_NO_STORE_RAW,
            (b"content-length", str(len(content)).encode("ascii")),
            (b"content-type", b"application/json"),
        ]


def json_response(
    body: Mapping[str, object], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    if not headers and status >= 200 and status not in (204, 304):  # (with a Content-Length)
        return _NoStoreJson(orjson.dumps(body), status)
    merged = dict(NO_STORE)
    if headers:
        merged.update(headers)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=merged
    )


async def send_json(send: Send, body: Mapping[str, object]) -> None:
    """What ``json_response(body)`` sends, sent by an endpoint written against ASGI: a 200 with
    ``NO_STORE`` and the same headers in the same order, without a ``Response`` object."""
    content = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                *_NO_STORE_RAW,
                (b"content-length", str(len(content)).encode("ascii")),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def error_response(exc: OAuthError) -> Response:
    return json_response(exc.body(), status=exc.status_code, headers=exc.headers)


async def read_body(request: Request, limit: int, *, time_limit: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all, and a body
    that has not arrived whole within ``time_limit`` seconds (:class:`RequestTimeout`).

    The deadline is total, not per chunk: a client trickling one byte a second cannot stretch
    it. Call this before any store is used, so that no connection waits on the client.
    (:func:`receive_body` on the request's messages, with ``request.stream()``'s flags: a
    disconnect marks the request disconnected, and a second read of the stream is refused.)"""
    try:
        body = await receive_body(
            request.receive,
            request.headers.get("content-length"),
            limit,
            time_limit=time_limit,
        )
    except ClientDisconnect:
        request._is_disconnected = True
        raise
    request._stream_consumed = True
    return body


async def receive_body(
    receive: Receive, declared: str | None, limit: int, *, time_limit: float
) -> bytes:
    """:func:`read_body` from the ASGI messages themselves (``receive``; ``declared``: the
    request's ``Content-Length``, if any), for an endpoint written against ASGI: the same size
    cap and total deadline. A disconnect raises ``ClientDisconnect``."""
    if declared is not None:
        # ASCII digits only (RFC 9110 §8.6): str.isdigit() also accepts '²', which int() refuses;
        # and int() refuses more than 4300 digits, so a long number is too large before int().
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidRequest("invalid Content-Length")
        digits = declared.lstrip("0")
        if len(digits) > len(str(limit)) or int(digits or "0") > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    # The ASGI messages themselves, as ``request.stream()`` reads them (it would add an async
    # generator and its closing to every request).
    chunks: list[bytes] = []
    size = 0
    deadline = asyncio.get_running_loop().time() + time_limit
    while True:
        # A message the server already holds (a form that came with its head: nearly every
        # one) is taken without arming a timer, which costs more than the rest of this
        # function (~6 µs a request on uvloop); a message still to come is waited for under
        # the deadline.
        steps = receive().__await__()
        try:
            pending = steps.send(None)
        except StopIteration as done:
            message = done.value
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await _finish(steps, pending)
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {time_limit:g} seconds"
                ) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


@types.coroutine
def _finish(steps: Generator[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Run ``steps`` (an awaitable's ``__await__()``, started by hand, which has just yielded
    ``pending`` to the event loop) to its end: what ``await`` does, from the second step on.
    The loop's answers are passed in, and what is thrown in (the deadline's cancellation) is
    thrown into it."""
    value = pending
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:
            try:
                value = steps.throw(exc)
            except StopIteration as done:
                return cast(T, done.value)
        else:
            try:
                value = steps.send(sent)
            except StopIteration as done:
                return cast(T, done.value)


async def read_form(
    request: Request, *, limit: int, max_value_length: int, time_limit: float
) -> dict[str, str]:
    """A strictly parsed ``application/x-www-form-urlencoded`` body (``core.params``), read
    under :func:`read_body`'s size cap and deadline."""
    check_form_content_type(request.headers.get("content-type"))
    body = await read_body(request, limit, time_limit=time_limit)
    return parse_params(body, max_value_length=max_value_length)


def single_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"the {name} header was sent more than once")
    return values[0] if values else None


class _LazyStore:
    """One store of a :class:`LazyStores`: each call first opens the request's transaction."""

    __slots__ = ("_name", "_owner")

    def __init__(self, owner: LazyStores, name: str) -> None:
        self._owner = owner
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            stores = await self._owner.open()
            return await getattr(getattr(stores, self._name), method)(*args, **kwargs)

        return call


class LazyStores:
    """The stores of one request whose connection and transaction are opened by the first store
    call, not before: a client-credentials request with a cached client and a JWT access token
    touches no store, so it pays for no pool checkout, ``BEGIN`` or ``COMMIT``. Otherwise the
    semantics of ``Database.transaction`` are unchanged: one transaction for every store call of
    the request, committed when the request succeeds, rolled back when it raises. Core code calls
    the stores one after another, never concurrently, so ``open`` needs no lock."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._context: AbstractAsyncContextManager[RequestStores] | None = None
        self._stores: RequestStores | None = None

    @property
    def holds_connection(self) -> bool:
        """Whether the first store call has opened the transaction (taken a connection)."""
        return self._stores is not None

    async def open(self) -> RequestStores:
        if self._stores is None:
            context = self._db.transaction()
            self._stores = await context.__aenter__()
            self._context = context
        return self._stores

    def __getattr__(self, name: str) -> _LazyStore:
        if name.startswith("_"):
            raise AttributeError(name)
        return _LazyStore(self, name)

    async def commit(self) -> None:
        if self._stores is not None:
            await self._stores.commit()

    async def close(self, exc: BaseException | None) -> None:
        context, self._context, self._stores = self._context, None, None
        if context is None:
            return
        if exc is None:
            await context.__aexit__(None, None, None)
        else:
            await context.__aexit__(type(exc), exc, exc.__traceback__)


class lazy_transaction:
    """``db.transaction()``, opened only if a store is used (see :class:`LazyStores`):
    ``async with lazy_transaction(db) as stores``. A class rather than an
    ``@asynccontextmanager`` generator: it is entered on every token, revocation and
    introspection request, and the generator's machinery cost more than the rest of it."""

    __slots__ = ("_lazy",)

    def __init__(self, db: Database) -> None:
        self._lazy = LazyStores(db)

    async def __aenter__(self) -> Stores:
        return cast("Stores", self._lazy)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # committed when the block succeeds, rolled back when it raises (which propagates)
        await self._lazy.close(exc)
