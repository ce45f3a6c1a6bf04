"""Health, readiness, metrics, request ids and structured logs (issue 8)."""

from __future__ import annotations

import json
import logging
import os
import random
import re

from tests.server.harness import ServerEnv
from tests.support.clients import machine
from tokensmith.server.observability import (
    JsonFormatter,
    RequestIdFilter,
    new_request_id,
    request_id,
)


async def test_health_and_readiness(server_env: ServerEnv) -> None:
    assert (await server_env.http.get("/healthz")).json() == {"status": "ok"}
    ready = await server_env.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


async def test_readiness_fails_when_the_database_is_gone(server_env: ServerEnv) -> None:
    runtime = server_env.app.state.runtime
    await runtime.db.engine.dispose()
    # point the engine at a database server that is not there (port 1)
    from tokensmith.storage.sqlalchemy.engine import create_engine

    runtime.db.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        response = await server_env.http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
    finally:
        await runtime.db.engine.dispose()


async def test_metrics_count_requests_tokens_and_errors(server_env: ServerEnv) -> None:
    env = server_env
    client = await machine(env)
    await env.token(client, {"grant_type": "client_credentials"})
    await env.token(client, {"grant_type": "password"})
    text = (await env.http.get("/metrics")).text
    assert 'tokensmith_tokens_issued_total{grant_type="client_credentials"} 1.0' in text
    assert 'tokensmith_oauth_errors_total{error="unsupported_grant_type"} 1.0' in text
    assert 'tokensmith_http_requests_total{method="POST",route="/token",status="200"}' in text
    assert "tokensmith_http_request_seconds_bucket" in text


async def test_request_ids(server_env: ServerEnv) -> None:
    env = server_env
    given = await env.http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    unsafe = await env.http.get("/healthz", headers={"X-Request-ID": "a b<script>"})
    assert unsafe.headers["x-request-id"] != "a b<script>"
    assert len(unsafe.headers["x-request-id"]) == 16


def test_fresh_request_ids_are_not_repeated_by_seeding_or_forking() -> None:
    """Request ids come from a generator of their own: ``random.seed`` (a test's, an app's)
    does not make two processes or two runs hand out the same ids, and a forked worker does
    not repeat its parent's."""
    random.seed(7)
    first = new_request_id()
    random.seed(7)
    again = new_request_id()
    assert first != again
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then gone
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{16}", child)
    assert child != new_request_id()


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "tokensmith.server", logging.INFO, __file__, 1, "hello %s", ("x",), None
    )
    token = request_id.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x"
    assert line["request_id"] == "rid-1"
    assert line["level"] == "INFO"


async def test_issuer_never_comes_from_host_or_forwarded_headers(server_env: ServerEnv) -> None:
    env = server_env
    spoofed = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        "Forwarded": "host=evil.example",
    }
    meta = (await env.http.get("/.well-known/openid-configuration", headers=spoofed)).json()
    assert meta["issuer"] == env.settings.issuer
    assert all("evil" not in str(v) for v in meta.values())
