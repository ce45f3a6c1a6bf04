"""The head deadline of ``tokensmith serve``'s protocols (httptools and h11), at the level of the
protocol object (the behaviour over real sockets is in ``test_protocols.py``): a head that
arrives whole in one read arms no timer; a head still incomplete after a read is timed from
that read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("httptools")

from uvicorn.config import Config
from uvicorn.server import ServerState

from tokensmith.server._httptools import LimitedHttpToolsProtocol
from tokensmith.server.protocols import LimitedH11Protocol

PROTOCOLS = {"httptools": LimitedHttpToolsProtocol, "h11": LimitedH11Protocol}

HEAD = b"GET / HTTP/1.1\r\nHost: as.test\r\n\r\n"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 443)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Loop:
    """The running loop, counting the head deadlines armed on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.head_deadlines = 0

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__name__", "") == "_head_deadline_passed":
            self.head_deadlines += 1
        return self._loop.call_later(delay, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


async def _connected(http: str) -> tuple[Any, _Transport, _Loop]:
    config = Config(app=_app, http=http, lifespan="off", log_level="warning")
    config.load()
    loop = _Loop(asyncio.get_running_loop())
    protocol = PROTOCOLS[http](
        config,
        ServerState(),
        {},
        loop,  # type: ignore[arg-type]
        max_header_bytes=64 * 1024,
        max_header_fields=100,
        header_read_timeout=5.0,
        https=False,
    )
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport, loop


@pytest.mark.parametrize("http", list(PROTOCOLS))
async def test_heads_that_arrive_whole_arm_no_timer(http: str) -> None:
    protocol, transport, loop = await _connected(http)
    assert loop.head_deadlines == 1  # the connection's first head, armed when it opened
    for _ in range(3):
        protocol.data_received(HEAD)
        await asyncio.sleep(0.01)
    assert b"".join(transport.written).count(b"HTTP/1.1 200 OK") == 3
    assert loop.head_deadlines == 1
    assert protocol._head_deadline is None
    protocol.connection_lost(None)


@pytest.mark.parametrize("http", list(PROTOCOLS))
async def test_a_head_split_across_reads_is_timed_from_its_first_read(http: str) -> None:
    protocol, transport, loop = await _connected(http)
    protocol.data_received(HEAD)
    await asyncio.sleep(0.01)
    protocol.data_received(HEAD[:10])
    assert loop.head_deadlines == 2
    deadline = protocol._head_deadline
    assert deadline is not None
    assert deadline.when() - asyncio.get_running_loop().time() == pytest.approx(5.0, abs=0.5)
    protocol.data_received(HEAD[10:20])  # still incomplete: the same deadline runs on
    assert protocol._head_deadline is deadline
    protocol.data_received(HEAD[20:])
    assert protocol._head_deadline is None
    await asyncio.sleep(0.01)
    assert b"".join(transport.written).count(b"HTTP/1.1 200 OK") == 2
    protocol.connection_lost(None)


@pytest.mark.parametrize("tail", [b"", HEAD[:10]], ids=["nothing-more", "a-head-begun"])
@pytest.mark.parametrize("http", list(PROTOCOLS))
async def test_a_connection_silent_after_an_unread_body_arrived_is_timed(
    http: str, tail: bytes
) -> None:
    """The app answers without reading the body; the body then arrives whole (alone, or with the
    first bytes of the next head) in one read. That read cancels uvicorn's keep-alive timer and
    ends the drain deadline: the connection now waits for a head, under the head deadline."""
    protocol, transport, loop = await _connected(http)
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: as.test\r\nContent-Length: 4\r\n\r\n")
    await asyncio.sleep(0.01)
    assert b"".join(transport.written).count(b"HTTP/1.1 200 OK") == 1
    assert protocol._drain_deadline is not None
    protocol.data_received(b"body" + tail)
    assert protocol._drain_deadline is None
    deadline = protocol._head_deadline
    assert deadline is not None, "no timer left: the connection would stay open for good"
    assert loop.head_deadlines == 2  # the connection's first head's, and this one
    assert deadline.when() - asyncio.get_running_loop().time() == pytest.approx(5.0, abs=0.5)
    protocol.data_received(HEAD[len(tail) :])  # the next request, served as usual
    assert protocol._head_deadline is None
    await asyncio.sleep(0.01)
    assert b"".join(transport.written).count(b"HTTP/1.1 200 OK") == 2
    protocol.connection_lost(None)


def test_serve_runs_no_websocket_protocol() -> None:
    """tokensmith serves no WebSocket: ``serve`` and the demo give uvicorn ``ws="none"``, so
    that with a WebSocket library installed (``uvicorn[standard]``) an upgrade request is still
    an HTTP request through the protocols above, not one uvicorn answers itself."""
    from tokensmith.server.protocols import uvicorn_options
    from tokensmith.settings import Settings

    options = uvicorn_options(Settings(issuer="https://as.test", _env_file=None))  # type: ignore[call-arg]
    assert options["ws"] == "none"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = Config(app, **options)
    config.load()
    assert config.ws_protocol_class is None
