"""``server.http``'s response helpers give exactly the responses Starlette's general path gives."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tests.support.asgi import http_scope
from tokensmith.server.http import (
    NO_STORE,
    PayloadTooLarge,
    RequestTimeout,
    json_response,
    read_body,
    send_json,
)


@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 503])
def test_json_response_headers_equal_starlettes(status: int) -> None:
    body = {"access_token": "x", "token_type": "Bearer", "ñ": "é"}
    fast = json_response(body, status=status)
    general = Response(
        fast.body, status_code=status, media_type="application/json", headers=NO_STORE
    )
    assert fast.raw_headers == general.raw_headers
    assert (fast.status_code, fast.body, fast.media_type) == (
        status,
        general.body,
        "application/json",
    )
    assert fast.headers["content-length"] == str(len(fast.body))


async def test_send_json_sends_what_json_response_sends() -> None:
    """The ASGI endpoints' 200 (``send_json``) is the ``json_response`` the other routes send:
    the same two messages, the same headers in the same order."""
    body = {"access_token": "x", "token_type": "Bearer", "ñ": "é"}
    sent: list[list[dict[str, Any]]] = [[], []]

    def recorder(into: list[dict[str, Any]]) -> Any:
        async def send(message: dict[str, Any]) -> None:
            into.append(message)

        return send

    async def nothing() -> dict[str, Any]:
        raise AssertionError("no body is read")

    await send_json(recorder(sent[0]), body)
    await json_response(body)(http_scope("POST", "/token", headers=[]), nothing, recorder(sent[1]))
    assert sent[0] == sent[1]
    assert [m["type"] for m in sent[0]] == ["http.response.start", "http.response.body"]


def test_json_response_with_headers_or_without_a_body_takes_the_general_path() -> None:
    extra = json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "3"})
    assert extra.headers["retry-after"] == "3"
    assert extra.headers["cache-control"] == "no-store"
    empty = json_response({}, status=204)
    assert "content-length" not in empty.headers  # as Starlette: none on a 204


# read_body: a message already received is taken without a timer; a message still to come is
# waited for under the total deadline.


def _request(messages: list[Any]) -> Request:
    """A request whose ``receive`` hands out ``messages`` in turn: a dict is ready at once, a
    float is a wait of that many seconds before the next dict, ``None`` never arrives."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        while True:
            item = pending.pop(0)
            if item is None:
                await asyncio.Event().wait()
            elif isinstance(item, float):
                await asyncio.sleep(item)
            else:
                return cast(dict[str, Any], item)

    scope = http_scope("POST", "/token", headers=[])
    return Request(scope, receive)


def _body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_already_received_arms_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    armed: list[float] = []
    real_timeout_at = asyncio.timeout_at

    def spy(when: float | None) -> asyncio.Timeout:
        armed.append(when or 0.0)
        return real_timeout_at(when)

    monkeypatch.setattr(asyncio, "timeout_at", spy)
    monkeypatch.setattr(asyncio, "timeout", lambda delay: spy(delay))
    request = _request([_body(b"a=1&", more=True), _body(b"b=2")])
    assert await read_body(request, 100, time_limit=5) == b"a=1&b=2"
    assert armed == []
    # a chunk that has to be waited for: the timer, at the read's start + the limit
    request = _request([_body(b"a=1&", more=True), 0.01, _body(b"b=2")])
    started = asyncio.get_running_loop().time()
    assert await read_body(request, 100, time_limit=5) == b"a=1&b=2"
    assert len(armed) == 1
    assert started + 5 <= armed[0] < started + 5.5


async def test_a_body_waited_for_arrives_whole() -> None:
    request = _request([0.01, _body(b"a=", more=True), 0.01, _body(b"1", more=True), _body(b"")])
    assert await read_body(request, 100, time_limit=5) == b"a=1"


async def test_a_body_that_never_arrives_is_a_request_timeout() -> None:
    request = _request([_body(b"a=", more=True), None])
    with pytest.raises(RequestTimeout):
        await read_body(request, 100, time_limit=0.05)


async def test_the_deadline_is_total_not_per_chunk() -> None:
    trickle: list[Any] = []
    for _ in range(10):
        trickle += [0.02, _body(b"a", more=True)]
    request = _request([*trickle, _body(b"")])
    with pytest.raises(RequestTimeout):
        await read_body(request, 100, time_limit=0.1)  # each wait 0.02 s, 0.2 s in all


async def test_a_read_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    waiting = asyncio.Event()
    never = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        waiting.set()
        await never
        return _body(b"")

    request = Request(http_scope("POST", "/token", headers=[]), receive)
    task = asyncio.create_task(read_body(request, 100, time_limit=5))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert never.cancelled()  # the cancellation reached the awaitable the read was waiting on


async def test_a_disconnect_while_waiting_is_a_client_disconnect() -> None:
    request = _request([0.01, {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnect):
        await read_body(request, 100, time_limit=5)


async def test_too_large_a_body_is_refused_before_it_is_all_read() -> None:
    request = _request([_body(b"x" * 60, more=True), _body(b"x" * 60, more=True), None])
    with pytest.raises(PayloadTooLarge):
        await read_body(request, 100, time_limit=5)


def test_the_revocation_answer_is_starlettes() -> None:
    """``POST /revoke``'s 200, written against ASGI, has the headers of the ``Response`` it
    replaces."""
    from tokensmith.server.routes.revoke import _REVOKED

    assert Response(status_code=200, headers={"Cache-Control": "no-store"}).raw_headers == _REVOKED
