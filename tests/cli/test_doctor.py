"""``tokensmith doctor``: a clean configuration passes; each bad setting yields its finding; a
running server is checked through ``--url`` (in-process through an ASGI transport, and a live
``tokensmith serve`` through the CLI)."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import os
import secrets
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.live import live_server, tokensmith_command
from tests.server.harness import ServerEnv
from tests.support.database import forget_keys
from tests.support.settings import ISSUER
from tokensmith.cli import app as cli
from tokensmith.core.clock import Clock, FakeClock
from tokensmith.doctor import Report, check_settings, diagnose, is_argon2_cost_sufficient
from tokensmith.server.runtime import ensure_keys
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy.engine import create_engine

KEK = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
PEPPER = "p" * 48
# Cheapest argon2id cost that OWASP accepts: fast enough for tests, and no finding.
GOOD: dict[str, Any] = {
    "issuer": ISSUER,
    "key_encryption_key": KEK,
    "pepper": PEPPER,
    "password_hash_memory_cost": 19456,
    "password_hash_time_cost": 2,
    "password_hash_parallelism": 1,
}
CONFIG_CHECKS = {
    "issuer-https",
    "cookies-secure",
    "key-encryption-key",
    "pepper",
    "argon2-cost",
    "log-level",
    "forwarded-allow-ips",
    "metrics-access",
    "token-lifetimes",
    "client-metadata-loopback",
    "dev-outbox",
}


@pytest.fixture
async def sqlite_url(sqlite_url: str) -> str:
    """The test database, private to its owner as tokensmith creates it (a copy is not), and
    without signing keys: each test makes the keys it is about (``make_keys``)."""
    os.chmod(sqlite_url.split("///", 1)[1], 0o600)
    await forget_keys(sqlite_url)
    return sqlite_url


def good_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, **{**GOOD, **overrides})


def findings(report: Report) -> set[str]:
    return {f.check for f in report.findings}


async def make_keys(settings: Settings, clock: Clock) -> None:
    engine = create_engine(settings.database_url)
    try:
        await ensure_keys(engine, settings, clock)
    finally:
        await engine.dispose()


class DatedTransport(httpx.AsyncBaseTransport):
    """What uvicorn adds in front of the app: a ``Date`` header (here from ``clock``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock, skew: float = 0):
        self.inner, self.clock, self.skew = inner, clock, skew

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        response.headers["Date"] = email.utils.formatdate(self.clock() + self.skew, usegmt=True)
        return response


# -- configuration -----------------------------------------------------------------------------


def test_clean_settings_have_no_finding() -> None:
    report = Report()
    check_settings(good_settings("sqlite+aiosqlite:///unused.db"), report)
    assert report.findings == []
    assert set(report.passed) == CONFIG_CHECKS


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"issuer": "http://127.0.0.1:8000"}, {"issuer-https", "cookies-secure"}),
        ({"key_encryption_key": None}, {"key-encryption-key"}),
        ({"key_encryption_key": "c2hvcnQ"}, {"key-encryption-key"}),
        ({"pepper": None}, {"pepper"}),
        ({"pepper": "short"}, {"pepper"}),
        ({"password_hash_memory_cost": 1024, "password_hash_time_cost": 1}, {"argon2-cost"}),
        ({"password_hash_memory_cost": 19455, "password_hash_time_cost": 2}, {"argon2-cost"}),
        ({"password_hash_memory_cost": 40000, "password_hash_time_cost": 1}, {"argon2-cost"}),
        ({"log_level": "DEBUG"}, {"log-level"}),
        ({"forwarded_allow_ips": "*"}, {"forwarded-allow-ips"}),
        ({"forwarded_allow_ips": "10.0.0.1, *"}, {"forwarded-allow-ips"}),
        ({"access_token_ttl": 7200}, {"token-lifetimes"}),
        ({"metrics_allow_ips": "0.0.0.0/0"}, {"metrics-access"}),
        ({"metrics_allow_ips": "127.0.0.1, ::/0"}, {"metrics-access"}),
        ({"metrics_allow_ips": "10.0.0.0/8, 8.0.0.0/8"}, {"metrics-access"}),
        ({"metrics_allow_ips": "10.0.0.0/8, 100.64.0.0/10, fd00::/8, 198.51.100.7"}, set()),
        ({"metrics_allow_ips": "0.0.0.0/0", "metrics_enabled": False}, set()),
        ({"client_metadata_allow_loopback": True}, {"client-metadata-loopback"}),
        ({"email_backend": "outbox"}, {"dev-outbox"}),
        (
            {"client_metadata_allow_loopback": True, "client_metadata_documents": False},
            set(),
        ),
    ],
)
def test_each_bad_setting_has_its_finding(overrides: dict[str, Any], expected: set[str]) -> None:
    report = Report()
    check_settings(good_settings("sqlite+aiosqlite:///unused.db", **overrides), report)
    assert findings(report) == expected
    for finding in report.findings:
        assert finding.problem
        assert finding.fix


@pytest.mark.parametrize(
    ("memory", "iterations", "ok"),
    [
        (19456, 2, True),  # OWASP's first line
        (47104, 1, True),
        (12288, 3, True),
        (9216, 4, True),
        (7168, 5, True),
        (7168, 4, False),
        (65536, 3, True),  # RFC 9106 second profile, argon2-cffi's default
        (2 * 1024 * 1024, 1, True),  # RFC 9106 first profile
        (47103, 1, False),
    ],
)
def test_argon2_minimums(memory: int, iterations: int, ok: bool) -> None:
    assert is_argon2_cost_sufficient(memory_kib=memory, time_cost=iterations) is ok


# -- stores ------------------------------------------------------------------------------------


async def test_clean_configuration_and_server_pass(sqlite_url: str, clock: FakeClock) -> None:
    settings = good_settings(sqlite_url)
    async with ServerEnv.start(settings, clock) as env:
        report = await diagnose(
            settings, url=ISSUER, transport=DatedTransport(env.transport, clock), clock=clock
        )
    assert report.ok, report.as_text()
    assert set(report.passed) == CONFIG_CHECKS | {
        "database-file-mode",
        "database",
        "database-migrated",
        "signing-keys",
        "signing-keys-encrypted",
        "deployment",
        "metadata-issuer",
        "hsts",
        "clock",
        "readyz",
    }
    assert json.loads(report.as_json()) == {"ok": True, "findings": [], "passed": report.passed}
    assert report.as_text().endswith("no findings, 21 checks passed")


async def test_database_missing_is_a_finding_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    report = await diagnose(good_settings(f"sqlite+aiosqlite:///{path}"))
    assert findings(report) == {"database"}
    assert not path.exists()


async def test_unusable_database_url_is_a_finding() -> None:
    report = await diagnose(good_settings("nosuchdialect://db"))
    assert findings(report) == {"database"}


async def test_unmigrated_database_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    path.chmod(0o600)
    report = await diagnose(good_settings(f"sqlite+aiosqlite:///{path}"))
    assert findings(report) == {"database-migrated"}
    assert "tokensmith db upgrade" in report.findings[0].fix


async def test_no_signing_keys_is_a_finding(sqlite_url: str) -> None:
    report = await diagnose(good_settings(sqlite_url))
    assert findings(report) == {"signing-keys"}
    assert "RS256" in report.findings[0].problem


async def test_retired_key_is_not_active(sqlite_url: str, clock: FakeClock) -> None:
    settings = good_settings(sqlite_url)
    await make_keys(settings, clock)
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as conn:
        conn.execute(
            "UPDATE ts_signing_keys SET retired_at = ?, expires_at = ? WHERE alg = 'ES256'",
            (int(clock()) - 10, int(clock()) - 5),
        )
    report = await diagnose(settings, clock=clock)
    assert findings(report) == {"signing-keys"}
    assert "ES256" in report.findings[0].problem


async def test_keys_under_another_kek_are_unreadable(sqlite_url: str, clock: FakeClock) -> None:
    await make_keys(good_settings(sqlite_url), clock)
    other = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    report = await diagnose(good_settings(sqlite_url, key_encryption_key=other), clock=clock)
    assert findings(report) == {"signing-keys"}
    assert "cannot be read" in report.findings[0].problem


async def test_keys_in_clear_despite_a_kek(sqlite_url: str, clock: FakeClock) -> None:
    await make_keys(good_settings(sqlite_url, key_encryption_key=None), clock)
    report = await diagnose(good_settings(sqlite_url), clock=clock)
    assert findings(report) == {"signing-keys-encrypted"}


async def test_sqlite_files_open_to_others_are_a_finding_left_unchanged(
    sqlite_url: str, clock: FakeClock
) -> None:
    settings = good_settings(sqlite_url)
    await make_keys(settings, clock)
    path = sqlite_url.split("///", 1)[1]
    wal = f"{path}-wal"
    os.close(os.open(wal, os.O_CREAT | os.O_WRONLY, 0o644))
    os.chmod(wal, 0o644)
    report = await diagnose(settings, clock=clock)
    assert findings(report) == {"database-file-mode"}
    assert f"{wal} (0644)" in report.findings[0].problem
    assert f"{path} (" not in report.findings[0].problem
    os.chmod(path, 0o640)  # (SQLite removed the WAL file when the doctor's connection closed)
    report = await diagnose(settings, clock=clock)
    assert f"{path} (0640)" in report.findings[0].problem
    assert os.stat(path).st_mode & 0o777 == 0o640  # the doctor only reads


async def test_unreachable_redis_is_a_finding(sqlite_url: str, clock: FakeClock) -> None:
    settings = good_settings(sqlite_url, redis_url="redis://127.0.0.1:1/0", redis_timeout=0.5)
    await make_keys(settings, clock)
    report = await diagnose(settings, clock=clock)
    assert findings(report) == {"redis"}


# -- deployment --------------------------------------------------------------------------------


async def test_issuer_mismatch_and_clock_skew(sqlite_url: str, clock: FakeClock) -> None:
    settings = good_settings(sqlite_url)
    async with ServerEnv.start(settings, clock) as env:
        elsewhere = good_settings(sqlite_url, issuer="https://auth.example.com")
        report = await diagnose(
            elsewhere,
            url=ISSUER,
            transport=DatedTransport(env.transport, clock, skew=-300),
            clock=clock,
        )
    assert findings(report) == {"metadata-issuer", "clock"}
    assert "behind" in next(f.problem for f in report.findings if f.check == "clock")


def _fake_server(*, ready: int = 200, hsts: bool = True, date: bool = True) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {}
        if hsts:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if date:
            headers["Date"] = email.utils.formatdate(usegmt=True)
        if request.url.path == "/readyz":
            return httpx.Response(ready, json={"status": "x"}, headers=headers)
        return httpx.Response(200, json={"issuer": ISSUER}, headers=headers)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({}, set()),
        ({"ready": 503}, {"readyz"}),
        ({"hsts": False}, {"hsts"}),
        ({"date": False}, {"clock"}),
    ],
)
async def test_deployment_checks(
    sqlite_url: str, clock: FakeClock, server: dict[str, Any], expected: set[str]
) -> None:
    settings = good_settings(sqlite_url)
    await make_keys(settings, clock)
    report = await diagnose(settings, url=ISSUER + "/", transport=_fake_server(**server))
    assert findings(report) == expected


async def test_unreachable_deployment(sqlite_url: str, clock: FakeClock) -> None:
    settings = good_settings(sqlite_url)
    await make_keys(settings, clock)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = await diagnose(settings, url=ISSUER, transport=httpx.MockTransport(refuse))
    assert findings(report) == {"deployment"}


# -- command line ------------------------------------------------------------------------------


def _env(settings: dict[str, Any]) -> dict[str, str]:
    return {f"TOKENSMITH_{k.upper()}": str(v) for k, v in settings.items() if v is not None}


def test_cli_exit_codes_and_json(sqlite_url: str, clock: FakeClock) -> None:
    asyncio.run(make_keys(good_settings(sqlite_url), clock))
    runner = CliRunner()
    env = _env({**GOOD, "database_url": sqlite_url})
    clean = runner.invoke(cli, ["doctor", "--json"], env=env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["ok"] is True

    bad = runner.invoke(cli, ["doctor"], env={**env, "TOKENSMITH_LOG_LEVEL": "DEBUG"})
    assert bad.exit_code == 1
    assert "FAIL log-level" in bad.stdout
    assert "fix: set TOKENSMITH_LOG_LEVEL=INFO" in bad.stdout
    assert "Traceback" not in bad.output


@pytest.mark.slow
def test_cli_checks_a_live_server(tmp_path: Path) -> None:
    """``tokensmith doctor --url`` against ``tokensmith serve``: a loopback http server is
    reachable, ready, on time and names its issuer; being http is what it is told to fix."""
    extra = {
        "key_encryption_key": KEK,
        "pepper": PEPPER,
        "password_hash_memory_cost": "19456",
        "password_hash_time_cost": "2",
    }
    with live_server(tmp_path, **extra) as server:
        result = subprocess.run(
            [*tokensmith_command(), "doctor", "--url", server.base_url, "--json"],
            env=server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert {f["check"] for f in report["findings"]} == {"issuer-https", "cookies-secure", "hsts"}
    assert {"deployment", "metadata-issuer", "readyz", "clock", "signing-keys"} <= set(
        report["passed"]
    )
