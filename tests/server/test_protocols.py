"""Request-head limits of ``tokensmith serve`` (security checklist W-73): a request line and
headers over ``max_header_bytes`` (64 KiB) or with more than ``max_header_fields`` (100) fields
get 431 and a closed connection, in every configuration of ``serve`` (httptools or h11, asyncio
or uvloop, one process or several), and an endless header is refused while it arrives, not
buffered until it ends; a head still incomplete after ``header_read_timeout`` gets 408 and a
closed connection, and a connection that sends nothing is closed. These answers, and the 400
to what is not HTTP, are written by the protocols before any application runs, and carry what
the application's answers carry: the security headers (HSTS with an https issuer), no-store,
connection close and a fresh request id, which the log line of the refusal carries too. Over
real sockets, against real ``tokensmith serve`` processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

import pytest

from tests.live import LiveServer, live_server
from tests.support.refusals import SECURITY_HEADERS, Answer, refusal

pytestmark = pytest.mark.slow

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100
HEADER_READ_TIMEOUT = 2.0
PIECE = 16 * 1024
IO_TIMEOUT = 15.0
"""Bound of every wait for the server (the answers themselves come at once)."""

HTTPS_ISSUER = "https://auth.example.test"

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


async def assert_refused(server: LiveServer, head: bytes, *, https: bool = False) -> Answer:
    output, _ = await send_refused(server, head)
    return refusal(output, 431, https=https)


async def output_until_closed(server: LiveServer, data: bytes) -> bytes:
    """Send ``data`` on a new connection; all the server writes until it closes it."""
    connection = await Connection.open(server)
    try:
        await connection.send(data)
        return await asyncio.wait_for(connection.reader.read(), IO_TIMEOUT)
    except TimeoutError:
        server.fail(f"no close after {data!r}")
        raise
    finally:
        connection.close()


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


async def trickled_head(server: LiveServer, *, kept_alive: bool) -> bytes:
    """A head that never completes (one byte every 0.2 s), on a new connection or on a
    kept-alive one: all the server writes after it, until it closes the connection."""
    connection = await Connection.open(server)
    try:
        if kept_alive:
            await connection.send(get())
            assert (await connection.answer()).status == 200
        await connection.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = asyncio.create_task(connection.reader.read())
        trickle = asyncio.create_task(_trickle(connection, answer))
        try:
            return await asyncio.wait_for(answer, HEADER_READ_TIMEOUT + IO_TIMEOUT)
        except TimeoutError:
            server.fail("a head sent at a trickle got no answer and its connection stayed open")
            raise
        finally:
            trickle.cancel()
    finally:
        connection.close()


@pytest.mark.parametrize("kept_alive", [False, True], ids=["first-request", "later-request"])
async def test_a_head_sent_at_a_trickle_gets_408_and_the_connection_closed(
    served: LiveServer, kept_alive: bool
) -> None:
    """A head that never completes is answered 408 once ``header_read_timeout`` has passed,
    on a new connection and on a kept-alive one, with the headers of every answer."""
    refusal(await trickled_head(served, kept_alive=kept_alive), 408)


async def test_what_is_not_http_gets_400_with_the_headers_of_every_answer(
    served: LiveServer,
) -> None:
    """uvicorn's 400 to a request its parser refuses, written by the protocol too: the same
    headers, and a fresh request id each time."""
    ids = set()
    for _ in range(2):
        output = await output_until_closed(
            served, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nnot a header\r\n\r\n"
        )
        ids.add(refusal(output, 400).headers["x-request-id"])
    assert len(ids) == 2


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


async def test_the_log_line_of_a_refusal_carries_its_request_id(served: LiveServer) -> None:
    """In every configuration, the worker processes of ``--workers`` included: ``serve``'s
    logging (JSON lines with the request id) is set up in each process that serves."""
    fields = [(f"X-F{i}", "v") for i in range(MAX_HEADER_FIELDS)]
    refused = await assert_refused(served, get(fields=fields))
    assert f'"request_id": "{refused.headers["x-request-id"]}"' in served.log()


# -- with an https issuer: HSTS on the protocols' own answers too --------------------------------


@pytest.fixture(scope="module", params=["httptools", "h11"])
def served_https(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """``tokensmith serve`` behind a TLS proxy (an https issuer), reached on its port."""
    directory = tmp_path_factory.mktemp(f"serve-https-{request.param}")
    with live_server(
        directory,
        serve_args=("--http", request.param),
        issuer=HTTPS_ISSUER,
        header_read_timeout=str(HEADER_READ_TIMEOUT),
    ) as server:
        yield server


async def test_with_an_https_issuer_a_431_carries_the_headers_of_an_api_answer_and_hsts(
    served_https: LiveServer,
) -> None:
    answer, connection = await request_once(served_https, get())
    connection.close()
    assert answer.status == 200
    fields = [(f"X-F{i}", "v") for i in range(MAX_HEADER_FIELDS)]
    refused = await assert_refused(served_https, get(fields=fields), https=True)
    for name in [*SECURITY_HEADERS, "strict-transport-security"]:
        assert refused.headers[name] == answer.headers[name], name
    # the log line of the refusal carries the id the client got, to find it by
    assert f'"request_id": "{refused.headers["x-request-id"]}"' in served_https.log()


async def test_with_an_https_issuer_a_408_and_a_400_carry_hsts(served_https: LiveServer) -> None:
    refusal(await trickled_head(served_https, kept_alive=False), 408, https=True)
    output = await output_until_closed(served_https, b"NOT HTTP AT ALL\r\n\r\n")
    refusal(output, 400, https=True)


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
