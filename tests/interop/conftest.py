"""Fixtures of the interoperability tests: one live ``tokensmith serve`` per test module, an API
and a user registered through the CLI, and the Node relying-party scripts of ``node/``.

The Node packages are installed by ``.ci/run`` (``npm ci`` in ``tests/interop/node``); when
``node_modules`` is missing locally, the ``node`` fixture runs the same command itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.live import LiveServer, live_server
from tests.services import node_path

NODE_DIR = Path(__file__).parent / "node"
NPM_CI = ["ci", "--no-audit", "--no-fund"]
NPM_TIMEOUT = 180
SCRIPT_TIMEOUT = 120.0
API = "https://api.interop.test"
API_SCOPES = ("docs:read", "docs:write")
CALLBACK = "http://127.0.0.1:9/callback"


@dataclass(frozen=True)
class Person:
    id: str
    username: str
    email: str
    name: str


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report shows the end of its live server's output."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveServer):
                report.sections.append(("tokensmith serve output", value.log() or "(nothing)"))
    return report


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running ``tokensmith serve`` with the test API registered."""
    with live_server(tmp_path_factory.mktemp("live")) as server:
        server.create_api(API, API_SCOPES)
        yield server


@pytest.fixture(scope="module")
def alice(live: LiveServer) -> Person:
    user = live.create_user(
        "alice", email="alice@example.com", email_verified=True, name="Alice Liddell"
    )
    return Person(id=user["id"], username="alice", email="alice@example.com", name="Alice Liddell")


async def jwks(live: LiveServer) -> jwt.PyJWKSet:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(live.url("/jwks.json"))
    assert response.status_code == 200, response.text
    return jwt.PyJWKSet.from_dict(response.json())


async def verify_access_token(
    live: LiveServer, token: str, *, audience: str = API
) -> dict[str, Any]:
    """An RFC 9068 access token checked independently: signature by a key of ``/jwks.json``,
    ``typ: at+jwt``, ``iss``, ``aud``, ``exp``."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    key = (await jwks(live))[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=live.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
    )
    assert key.algorithm_name == header["alg"] in ("ES256", "RS256", "EdDSA")
    return claims


# -- Node -------------------------------------------------------------------------------------


def _npm_install() -> None:
    npm = shutil.which("npm")
    assert npm is not None
    command = f"npm {' '.join(NPM_CI)} (in {NODE_DIR})"
    try:
        done = subprocess.run(
            [npm, *NPM_CI], cwd=NODE_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} did not finish within {NPM_TIMEOUT} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{command} failed with exit status {done.returncode}:\n{done.stderr[-3000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the packages of ``node/package-lock.json`` installed."""
    executable = node_path()
    if not (NODE_DIR / "node_modules" / "openid-client" / "package.json").exists():
        _npm_install()
    return executable


class NodeScript:
    """One run of a script of ``node/``: JSON lines out, one line in (then stdin closes)."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    async def _stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        return (await self.process.stderr.read()).decode(errors="replace")[-3000:]

    async def read(self) -> dict[str, Any]:
        """The next JSON line; a missing line or an ``{"error": ...}`` fails the test."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), SCRIPT_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"{self.name}: no output within {SCRIPT_TIMEOUT} s\n{await self._stderr()}")
        if not line:
            pytest.fail(f"{self.name} ended without a result:\n{await self._stderr()}")
        data: dict[str, Any] = json.loads(line)
        if "error" in data:
            pytest.fail(f"{self.name} failed: {json.dumps(data['error'], indent=2)}")
        return data

    async def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()
        self.process.stdin.close()


@asynccontextmanager
async def run_node(node: str, script: str, options: dict[str, Any]) -> AsyncIterator[NodeScript]:
    """Start ``node node/SCRIPT 'OPTIONS-JSON'``; on exit make sure it has ended."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / script),
        json.dumps(options),
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeScript(process, script)
    finally:
        if process.returncode is None:
            if process.stdin is not None and not process.stdin.is_closing():
                process.stdin.close()
            try:
                await asyncio.wait_for(process.communicate(), SCRIPT_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
