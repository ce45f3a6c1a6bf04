"""docs/admin-api.md's examples, run for real: ``tokensmith admin bootstrap`` through the console
script, then every ``curl`` block of the page, in order, in one ``bash`` (with the real ``curl``
and ``jq``) against a real ``tokensmith serve``. Each ``# {...}`` line under a command is the
answer the page promises: it must be in the output."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAST_HASH
from tokensmith.testing.ports import reserve_port

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "admin-api.md"
FENCE = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
    ),
]


def curl_blocks() -> list[str]:
    return [b for b in FENCE.findall(PAGE.read_text(encoding="utf-8")) if "curl " in b]


def promised_answers(blocks: list[str]) -> list[str]:
    return [
        line.strip()[2:]
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("# {")
    ]


def bootstrap_line() -> list[str]:
    for block in FENCE.findall(PAGE.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if line.startswith("tokensmith admin bootstrap"):
                return shlex.split(line)[1:]
    raise AssertionError("docs/admin-api.md shows no `tokensmith admin bootstrap`")


def env_for(tmp_path: Path, issuer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({f"TOKENSMITH_{k.upper()}": str(v) for k, v in FAST_HASH.items()})
    env["TOKENSMITH_ISSUER"] = issuer
    env["TOKENSMITH_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    env["TOKENSMITH_SIGNUP"] = "invite"  # the invitations' examples
    return env


def tokensmith(env: dict[str, str], cwd: Path, *argv: str) -> str:
    done = subprocess.run(
        ["tokensmith", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


def wait_until_up(issuer: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"tokensmith serve exited {server.returncode}: {output}")
        try:
            httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("tokensmith serve did not answer within 60 s")


def test_the_curl_examples_run_against_a_real_server(tmp_path: Path) -> None:
    sock = reserve_port()
    port = sock.getsockname()[1]
    sock.close()  # uvicorn binds it itself
    issuer = f"http://127.0.0.1:{port}"
    env = env_for(tmp_path, issuer)
    tokensmith(env, tmp_path, "db", "upgrade")
    created = json.loads(tokensmith(env, tmp_path, *bootstrap_line()))
    assert created["audience"] == issuer + "/admin/v1"
    assert created["client_secret"].startswith("ts_cs_")
    server = subprocess.Popen(
        ["tokensmith", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(issuer, server)
        blocks = curl_blocks()
        assert len(blocks) >= 5
        script = "set -euo pipefail\n" + "\necho\n".join(blocks)
        done = subprocess.run(
            ["bash", "-c", script],
            env={
                **env,
                "ISSUER": issuer,
                "CLIENT_ID": created["client_id"],
                "CLIENT_SECRET": created["client_secret"],
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    out = done.stdout
    answers = promised_answers(blocks)
    assert len(answers) == 3
    for answer in answers:
        assert answer in out, (answer, out)
    assert '"username":"alice"' in out
    assert '"name":"Alice Liddell"' in out
    assert '"identifier":"https://api.example.com"' in out
    assert '"client_secret":"ts_cs_' in out
    assert '"state":"signing"' in out
    assert '{"revoked":0}' in out
    assert '{"ended":0}' in out
    assert '"invitations":[{"email":"nora@example.com","name":"Nora"' in out
