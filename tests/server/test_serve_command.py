"""``tokensmith serve`` as an operator runs it (issue 15, trap 2), through the real console script:
no start without ``TOKENSMITH_ISSUER`` (``--dev`` aside), and a start-up summary that says what
the server runs with, passwords masked."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.live import (
    READY_TIMEOUT,
    LiveServer,
    _wait_ready,
    free_port,
    serve_env,
    spawn_server,
    stop_server,
    tokensmith_command,
)
from tokensmith.cli.serve import mask_url


def without_issuer(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "TOKENSMITH_ISSUER"}


def test_serve_refuses_to_start_without_an_issuer(tmp_path: Path) -> None:
    database = tmp_path / "never-created.db"
    env = without_issuer(serve_env(issuer="unused", database_url=f"sqlite+aiosqlite:///{database}"))
    done = subprocess.run(
        [*tokensmith_command(), "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,  # no .env file here
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith("error: TOKENSMITH_ISSUER is not set")
    assert "set TOKENSMITH_ISSUER=https://" in error
    assert "--dev" in error
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not database.exists()  # refused before anything was created


def started(server: LiveServer) -> str:
    _wait_ready(server, time.monotonic() + READY_TIMEOUT)
    return server.log()


def test_serve_dev_runs_on_a_loopback_issuer_of_its_port(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    env = without_issuer(serve_env(issuer="unused", database_url=sqlite_url))
    env["TOKENSMITH_GC_FREEZE"] = "false"  # set: serve keeps it
    server = spawn_server(tmp_path, env, port=port, serve_args=("--dev",))
    try:
        log = started(server)
        metadata = httpx.get(server.url("/.well-known/openid-configuration"), timeout=5).json()
        assert metadata["issuer"] == f"http://127.0.0.1:{port}"
        assert "--dev: development only" in log
        assert f"issuer:       http://127.0.0.1:{port}" in log
        assert "gc freeze:    off" in log
    finally:
        stop_server(server)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        user, _, host = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    return url  # SQLite: no password to hide


def test_serve_prints_what_it_runs_with(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    # PostgreSQL in the tests trusts local connections: the password is accepted and ignored
    url = with_password(database_url, "s3cret-db-pw")
    issuer = "https://auth.example.test"
    env = serve_env(issuer=issuer, database_url=url)
    server = spawn_server(tmp_path, env, port=port, serve_args=("--workers", "1"))
    try:
        log = started(server)
        keys = httpx.get(server.url("/jwks.json"), timeout=5).json()["keys"]
    finally:
        stop_server(server)
    assert "s3cret-db-pw" not in log
    summary = dict(
        line.strip().split(": ", 1) for line in log.splitlines() if line.startswith("  ")
    )
    assert summary["issuer"].strip() == issuer
    assert summary["listening on"].strip() == f"http://127.0.0.1:{port}"
    assert summary["database"].strip() == mask_url(url)
    if "@" in url:
        assert ":***@" in summary["database"]
    assert summary["redis"].strip() == "none"
    assert summary["workers"].strip() == "1"
    assert summary["gc freeze"].strip() == "on"  # serve's default (Settings.gc_freeze)
    published = {key["kid"] for key in keys}
    signing = summary["signing keys"].strip().split(", ")
    assert {entry.split(" ")[0] for entry in signing} == {"ES256", "RS256", "EdDSA"}
    assert {entry.split(" ")[1] for entry in signing} <= published


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+asyncpg://ts:pw@db.internal:5432/ts",
            "postgresql+asyncpg://ts:***@db.internal:5432/ts",
        ),
        ("redis://:redispw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://user:p%40ss@cache/1", "rediss://user:***@cache/1"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        # red team: libpq/asyncpg and redis-py also take the password as a query parameter
        (
            "postgresql+asyncpg://db.internal/ts?user=ts&password=pw&ssl=require",
            "postgresql+asyncpg://db.internal/ts?user=ts&password=***&ssl=require",
        ),
        ("redis://cache:6379/0?password=redispw", "redis://cache:6379/0?password=***"),
        ("sqlite+aiosqlite:///./tokensmith.db", "sqlite+aiosqlite:///./tokensmith.db"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_serve_refuses_the_development_outbox_on_a_public_issuer(tmp_path: Path) -> None:
    """Red team: with email_backend=outbox, /dev/outbox lists every reset link to anyone, so
    ``serve`` runs it only for an issuer on this machine."""
    database = tmp_path / "never-created.db"
    env = serve_env(
        issuer="https://auth.example.com", database_url=f"sqlite+aiosqlite:///{database}"
    )
    env.update(TOKENSMITH_EMAIL_BACKEND="outbox", TOKENSMITH_OUTBOX_DIR=str(tmp_path / "out"))
    done = subprocess.run(
        [*tokensmith_command(), "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    error = done.stderr.strip()
    assert error.startswith("error: TOKENSMITH_EMAIL_BACKEND=outbox lists every"), error
    assert "Traceback" not in done.stderr
    assert not database.exists()
