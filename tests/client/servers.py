"""Loopback servers for the length of a test: an ASGI app under uvicorn over real HTTP, and raw
HTTP/1.1 servers that misbehave on purpose (hang, drip, send too much)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def dead_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serve(make_app: Callable[[str], Any]) -> AsyncIterator[str]:
    """Serve ``make_app(base_url)`` on a free port; yields the base URL."""
    sock = bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        make_app(base_url), lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield base_url
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def hanging_server() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers (a provider that hangs)."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(65536):  # until the client gives up and closes
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@dataclass
class RawServer:
    """A loopback HTTP/1.1 server written on raw sockets, for answers no framework would send."""

    url: str
    requests: int = 0
    bytes_sent: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and ``Content-Length`` body); False when the client went away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return False
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            await reader.readexactly(int(value.strip()))
    return True


async def _until_hang_up(answer: Awaitable[None]) -> None:
    with contextlib.suppress(ConnectionError):  # the client hung up while we were writing
        await answer


@asynccontextmanager
async def raw_server(
    answer: Callable[[RawServer, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[RawServer]:
    """Serve every request on 127.0.0.1 with ``answer``. When the client closes the connection
    mid-answer, the answer stops and ``disconnected`` is set (the EOF is watched concurrently)."""
    handlers: set[asyncio.Task[Any]] = set()
    inner: set[asyncio.Task[Any]] = set()
    state = RawServer(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            if not await _read_request(reader):
                return
            state.requests += 1
            answering = asyncio.create_task(_until_hang_up(answer(state, writer)))
            watching = asyncio.create_task(reader.read(1))  # b"" once the client hangs up
            inner.update((answering, watching))
            done, _ = await asyncio.wait({answering, watching}, return_when=asyncio.FIRST_COMPLETED)
            if watching in done:
                state.disconnected.set()
            for pending in (answering, watching):
                pending.cancel()
            await asyncio.gather(answering, watching, return_exceptions=True)
            inner.difference_update((answering, watching))
        except ConnectionError:
            state.disconnected.set()
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in list(inner):  # the handlers then finish on their own
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def dripping_server(*, interval: float = 0.2, drips: int = 100) -> Any:
    """200 with a JSON ``Content-Length`` body sent one byte per ``interval``: each read is quick,
    so no per-read timeout trips, but the body takes ``interval * drips`` seconds (bounded)."""

    async def answer(state: RawServer, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {drips + 2}\r\n\r\n{{".encode()
        )
        await writer.drain()
        for _ in range(drips):
            await asyncio.sleep(interval)
            writer.write(b" ")
            await writer.drain()
            state.bytes_sent += 1
        writer.write(b"}")
        await writer.drain()

    return raw_server(answer)


def oversized_server(*, total: int, declare_length: bool, chunk: int = 64 * 1024) -> Any:
    """200 with a body of ``total`` bytes (a JSON string), written in ``chunk``-byte pieces while
    the client reads; with ``declare_length`` the size is announced in ``Content-Length``,
    otherwise the body is chunk-encoded."""

    async def answer(state: RawServer, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
        head += (
            f"Content-Length: {total}\r\n\r\n".encode()
            if declare_length
            else (b"Transfer-Encoding: chunked\r\n\r\n")
        )
        writer.write(head)
        piece = b'"' + b"x" * (chunk - 1)
        sent = 0
        while sent < total:
            data = piece[: min(chunk, total - sent)]
            writer.write(data if declare_length else b"%x\r\n%b\r\n" % (len(data), data))
            await writer.drain()
            sent += len(data)
            state.bytes_sent = sent
        if not declare_length:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return raw_server(answer)


class CountingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, counting the response-body bytes handed to the caller (what a
    client holds in memory), so a test can prove a read stopped at a cap."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.body_bytes: list[int] = []  # per response, in order

    @property
    def most_read(self) -> int:
        """The most body bytes one response handed over."""
        return max(self.body_bytes, default=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, self.body_bytes),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CountingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, counts: list[int]) -> None:
        self._inner = inner
        self._counts = counts
        self._index = len(counts)
        counts.append(0)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._counts[self._index] += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
