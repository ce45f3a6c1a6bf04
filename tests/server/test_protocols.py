"""Request-head limits of ``tokensmith serve`` (security checklist W-73): a request line and
headers over ``max_header_bytes`` (64 KiB) or with more than ``max_header_fields`` (100) fields
get 431 and a closed connection, in every configuration of ``serve`` (httptools or h11, asyncio
or uvloop, one process or several), and an endless header is refused while it arrives, not
buffered until it ends; a head still incomplete after ``header_read_timeout`` gets 408 and a
closed connection, and a connection that sends nothing is closed. Over real sockets, against
real ``tokensmith serve`` processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from tests.live import LiveServer, live_server

pytestmark = pytest.mark.slow

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100
HEADER_READ_TIMEOUT = 2.0
PIECE = 16 * 1024
IO_TIMEOUT = 15.0
"""Bound of every wait for the server (the answers themselves come at once)."""

CONFIGURATIONS = {
    "auto": (),
    "httptools-asyncio": ("--http", "httptools", "--loop", "asyncio"),
    "httptools-uvloop": ("--http", "httptools", "--loop", "uvloop"),
    "h11-asyncio": ("--http", "h11", "--loop", "asyncio"),
    "h11-uvloop": ("--http", "h11", "--loop", "uvloop"),
    "auto-workers": ("--workers", "2"),
    "h11-workers": ("--http", "h11", "--workers", "2"),
}


@pytest.fixture(scope="module", params=list(CONFIGURATIONS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp(f"serve-{request.param}")
    with live_server(
        directory,
        serve_args=CONFIGURATIONS[request.param],
        header_read_timeout=str(HEADER_READ_TIMEOUT),
    ) as server:
        yield server


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One raw HTTP/1.1 connection to the server: exact bytes out, answers parsed back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: LiveServer) -> Connection:
        port = int(server.url("").rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> Answer:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), IO_TIMEOUT)
        return Answer(int(status_line.split()[1]), headers, body)

    def close(self) -> None:
        self.writer.close()


def get(path: str = "/healthz", *, fields: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{n}: {v}" for n, v in fields)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def request_once(server: LiveServer, data: bytes) -> tuple[Answer, Connection]:
    connection = await Connection.open(server)
    await connection.send(data)
    return await connection.answer(), connection


async def send_refused(server: LiveServer, head: bytes) -> tuple[bytes, int]:
    """Send ``head`` in pieces like a client that reads while it writes, and stop writing once
    past the limit (a server that closes with unread bytes resets the connection, which would
    lose its answer). The server's whole output until it closed the connection, and the number
    of bytes sent; fails if the server neither answers nor closes."""
    connection = await Connection.open(server)
    sent = 0
    try:
        first = b""
        for start in range(0, len(head), PIECE):
            await connection.send(head[start : start + PIECE])
            sent += min(PIECE, len(head) - start)
            if sent > MAX_HEADER_BYTES + PIECE:
                break
            try:
                first = await asyncio.wait_for(connection.reader.read(1), 0.05)
                break
            except TimeoutError:
                continue
        # read() returns at the end of the stream: once the server has closed the connection
        rest = await asyncio.wait_for(connection.reader.read(), IO_TIMEOUT)
    except TimeoutError:
        server.fail(f"no answer and no close after {sent} bytes of a request head")
        raise
    finally:
        connection.close()
    return first + rest, sent


async def assert_refused(server: LiveServer, head: bytes) -> None:
    output, _ = await send_refused(server, head)
    assert output.startswith(b"HTTP/1.1 431 "), (output, server.log())
    assert b"\r\nconnection: close\r\n" in output.lower()


async def test_a_header_larger_than_max_header_bytes_is_431_and_the_connection_closed(
    served: LiveServer,
) -> None:
    await assert_refused(served, get(fields=[("X-Big", "a" * (MAX_HEADER_BYTES + 1000))]))


async def test_many_header_fields_adding_up_past_max_header_bytes_are_431(
    served: LiveServer,
) -> None:
    fields = [(f"X-Part-{i}", "b" * 1000) for i in range(70)]
    await assert_refused(served, get(fields=fields))


async def test_a_request_line_longer_than_max_header_bytes_is_431(served: LiveServer) -> None:
    await assert_refused(served, get("/healthz?q=" + "c" * (MAX_HEADER_BYTES + 1000)))


async def test_more_header_fields_than_max_header_fields_is_431_and_the_connection_closed(
    served: LiveServer,
) -> None:
    # Host and 100 more: 101 fields, each a few bytes
    fields = [(f"X-F{i}", "v") for i in range(MAX_HEADER_FIELDS)]
    await assert_refused(served, get(fields=fields))


async def test_an_endless_header_is_refused_while_it_arrives(served: LiveServer) -> None:
    """A header that never ends is answered once the limit is passed, not buffered until its
    end: the server refuses a head it has not seen whole."""
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: " + b"d" * 4 * 1024 * 1024
    output, sent = await send_refused(served, head)
    assert output.startswith(b"HTTP/1.1 431 "), (output, served.log())
    assert sent < len(head)


async def test_large_heads_within_the_limits_are_served_one_after_another(
    served: LiveServer,
) -> None:
    """Heads of 40 KB and 90 fields are served, twice on one keep-alive connection: the
    counts start again with each request."""
    fields = [(f"X-F{i}", "e" * 440) for i in range(90)]
    connection = await Connection.open(served)
    try:
        for _ in range(2):
            await connection.send(get(fields=fields))
            answer = await connection.answer()
            assert answer.status == 200, (answer, served.log())
    finally:
        connection.close()


async def test_a_normal_request_is_served_after_a_refused_one(served: LiveServer) -> None:
    await assert_refused(served, get(fields=[("X-Big", "f" * (2 * MAX_HEADER_BYTES))]))
    answer, connection = await request_once(served, get("/.well-known/openid-configuration"))
    connection.close()
    assert answer.status == 200


async def _trickle(connection: Connection, answer: asyncio.Task[bytes]) -> None:
    """A byte every 0.2 s for half of ``header_read_timeout``, then silence (never the end):
    bytes still arriving when the server closes would make its kernel reset the connection,
    and the client could lose the answer to the reset."""
    with contextlib.suppress(ConnectionError):
        for _ in range(int(HEADER_READ_TIMEOUT / 2 / 0.2)):
            await asyncio.sleep(0.2)
            if answer.done():
                return
            await connection.send(b"g")


async def test_a_connection_that_sends_nothing_is_closed_after_header_read_timeout(
    served: LiveServer,
) -> None:
    connection = await Connection.open(served)
    try:
        output = await asyncio.wait_for(connection.reader.read(), HEADER_READ_TIMEOUT + IO_TIMEOUT)
    except TimeoutError:
        served.fail("a connection that sent nothing was kept open")
        raise
    finally:
        connection.close()
    assert output == b""


@pytest.mark.parametrize("kept_alive", [False, True], ids=["first-request", "later-request"])
async def test_a_head_sent_at_a_trickle_gets_408_and_the_connection_closed(
    served: LiveServer, kept_alive: bool
) -> None:
    """A head that never completes (one byte every 0.2 s) is answered 408 once
    ``header_read_timeout`` has passed, on a new connection and on a kept-alive one."""
    connection = await Connection.open(served)
    try:
        if kept_alive:
            await connection.send(get())
            assert (await connection.answer()).status == 200
        await connection.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = asyncio.create_task(connection.reader.read())
        trickle = asyncio.create_task(_trickle(connection, answer))
        try:
            output = await asyncio.wait_for(answer, HEADER_READ_TIMEOUT + IO_TIMEOUT)
        except TimeoutError:
            served.fail("a head sent at a trickle got no answer and its connection stayed open")
            raise
        finally:
            trickle.cancel()
    finally:
        connection.close()
    assert output.startswith(b"HTTP/1.1 408 "), output
    assert b"\r\nconnection: close\r\n" in output.lower()


async def test_an_unread_body_sent_at_a_trickle_has_its_connection_closed(
    served: LiveServer,
) -> None:
    """A body the application answers without reading (405 here) must still arrive within
    ``header_read_timeout`` after the response; trickled, its connection is closed."""
    connection = await Connection.open(served)
    try:
        await connection.send(
            b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nh"
        )
        answer = asyncio.create_task(connection.reader.read())
        trickle = asyncio.create_task(_trickle(connection, answer))
        try:
            output = await asyncio.wait_for(answer, HEADER_READ_TIMEOUT + IO_TIMEOUT)
        except TimeoutError:
            served.fail("a connection trickling an unread body was kept open")
            raise
        finally:
            trickle.cancel()
    finally:
        connection.close()
    assert output.startswith(b"HTTP/1.1 405 "), output


@pytest.mark.parametrize("tail", [b"", b"GET /healthz HT"], ids=["nothing-more", "a-head-begun"])
async def test_a_connection_silent_after_its_unread_body_arrived_is_closed(
    served: LiveServer, tail: bytes
) -> None:
    """A body the application answered without reading (405 here) that then arrives whole, alone
    or with the first bytes of the next head, and after it silence: the connection is closed
    within ``header_read_timeout``. The read that brought the body cancelled uvicorn's keep-alive
    timer (armed when the response completed) and ended the drain deadline; before, no timer was
    left and such a connection stayed open for good (any number of them: the descriptors)."""
    connection = await Connection.open(served)
    try:
        await connection.send(
            b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n"
        )
        assert (await connection.answer()).status == 405
        await connection.send(b"0123456789" + tail)
        try:
            output = await asyncio.wait_for(
                connection.reader.read(), HEADER_READ_TIMEOUT + IO_TIMEOUT
            )
        except TimeoutError:
            served.fail("a connection silent after its unread body arrived was kept open")
            raise
    finally:
        connection.close()
    assert output == b"" or output.startswith(b"HTTP/1.1 408 "), output
