"""``uvicorn --factory tokensmith.server.factory:app_from_env`` run by hand, with the commands of
docs/deployment.md ("Running uvicorn yourself"): with ``--http
tokensmith.server.factory:http_from_env`` it has the request-head limits of the environment's
settings, and its refusals carry the headers of every answer. A real uvicorn process over real
sockets."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.live import (
    CLI_TIMEOUT,
    READY_TIMEOUT,
    LiveServer,
    _wait_ready,
    free_port,
    serve_env,
    stop_server,
    tokensmith_command,
)
from tests.support.doc_samples import logical_lines, sh_block
from tests.support.refusals import refusal

pytestmark = pytest.mark.slow

MAX_HEADER_FIELDS = 20
"""Less than the default (100): the limit comes from the environment."""


@pytest.fixture(scope="module")
def factory_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("factory")
    port = free_port()
    env = serve_env(
        issuer=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{directory / 'tokensmith.db'}",
        max_header_fields=str(MAX_HEADER_FIELDS),
        forwarded_allow_ips="192.0.2.1",
    )
    migrate, run = (
        shlex.split(line, comments=True)
        for line in logical_lines(sh_block("docs/deployment.md", "http_from_env").code)
    )
    assert migrate == ["tokensmith", "db", "upgrade"]
    subprocess.run(
        [*tokensmith_command(), *migrate[1:]],
        env=env,
        cwd=directory,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    assert run[0] == "uvicorn"
    argv = [env.get(w[1:], "") if w.startswith("$") else w for w in run[1:]]
    log_path = directory / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", *argv, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(
        issuer=env["TOKENSMITH_ISSUER"],
        directory=directory,
        env=env,
        process=process,
        log_path=log_path,
        base_url=env["TOKENSMITH_ISSUER"],
    )
    try:
        _wait_ready(server, time.monotonic() + READY_TIMEOUT)
        yield server
    finally:
        stop_server(server)


def exchange(server: LiveServer, fields: int) -> bytes:
    """A request with ``fields`` header fields (Host included); what the server writes until
    it closes the connection (``Connection: close`` asked)."""
    port = int(server.url("").rsplit(":", 1)[1])
    lines = ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"X-F{i}: v" for i in range(fields - 2)]
    with socket.create_connection(("127.0.0.1", port), timeout=15.0) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        output = b""
        while chunk := sock.recv(65536):
            output += chunk
    return output


def test_http_from_env_gives_the_head_limits_of_the_environment(factory_run: LiveServer) -> None:
    answer = exchange(factory_run, MAX_HEADER_FIELDS)
    assert answer.startswith(b"HTTP/1.1 200 "), (answer, factory_run.log())
    assert b"\r\nserver:" not in answer.lower()  # --no-server-header, as serve
    refusal(exchange(factory_run, MAX_HEADER_FIELDS + 1), 431)
