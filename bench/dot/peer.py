"""The django-oauth-toolkit (DOT) peer: set-up, server and single-use credentials.

DOT 3.x (the ``bench`` extra) serves ``bench.dot`` with gunicorn: one worker process, the gthread
worker with 4 threads (faster than the sync worker, which idles while PostgreSQL answers, and
than uvicorn). OIDC is on (id_tokens signed RS256). Codes are prepared like tokensmith's, through
DOT's own endpoints: a browser logs the bench user in with Django's login form, then each code is
one ``GET /o/authorize/`` (PKCE S256) and one ``POST`` of its consent form with ``allow``.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import secrets
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import httpx

from bench.common import PYTHON, ROOT, Server, free_port
from bench.dot import PASSWORD, REDIRECT, USERNAME
from bench.prepare import _code_of, _gather, code_body, pkce_pair, refresh_body
from bench.seed import basic

T = TypeVar("T")
SETTINGS = "bench.dot.settings"
THREADS = 4  # gunicorn gthread threads of the one worker process
CC_BODY = "grant_type=client_credentials&scope=read"
_HIDDEN = re.compile(r'<input type="hidden" name="([A-Za-z_]+)" value="([^"]*)"')


def installed() -> bool:
    try:
        metadata.version("django-oauth-toolkit")
        metadata.version("gunicorn")
    except metadata.PackageNotFoundError:
        return False
    return True


def version() -> str | None:
    try:
        return metadata.version("django-oauth-toolkit")
    except metadata.PackageNotFoundError:
        return None


def django_url(url: str) -> str:
    """The bench's SQLAlchemy URL (``postgresql+asyncpg://``, ``sqlite+aiosqlite:///``) as the
    URL ``bench.dot.settings`` reads."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@dataclass(frozen=True)
class Peer:
    """DOT's applications (client id and secret), and the environment its processes need."""

    env: dict[str, str]
    clients: dict[str, dict[str, str]]

    def auth(self, name: str) -> str:
        client = self.clients[name]
        return basic(client["client_id"], client["client_secret"])


def setup(database_url: str, workdir: Path) -> Peer:
    """Migrate DOT's database (``database_url``: a fresh SQLite file or PostgreSQL database) and
    create its user and applications (the ``bench_setup`` command)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = workdir / "dot-rsa.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "BENCH_DOT_DATABASE": django_url(database_url),
        "BENCH_DOT_RSA_KEY": str(key_path),
        "BENCH_DOT_SECRET": secrets.token_urlsafe(32),
    }
    out = workdir / "dot-clients.json"
    subprocess.run(
        [PYTHON, "-m", "django", "bench_setup", str(out)],
        env={**os.environ, **env},
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return Peer(env, json.loads(out.read_text()))


def server(peer: Peer, threads: int = THREADS) -> Server:
    port = free_port()
    command = [PYTHON, "-m", "gunicorn", "bench.dot.wsgi:application", "--workers", "1"]
    command += ["--worker-class", "gthread", "--threads", str(threads)]
    # gunicorn's default keep-alive (2 s) drops the preparing browser's idle connections while
    # the server is busy; wrk keeps its connections busy, so this changes nothing measured
    command += ["--bind", f"127.0.0.1:{port}", "--keep-alive", "30", "--log-level", "warning"]
    return Server(
        "dot",
        port,
        command,
        env=peer.env,
        cwd=str(ROOT),
        health="/o/.well-known/openid-configuration",
    )


class DotBrowser:
    """A browser of the bench user, logged in to DOT with Django's login form."""

    def __init__(self, base_url: str, peer: Peer) -> None:
        self.peer = peer
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.http = httpx.AsyncClient(
            base_url=base_url, follow_redirects=False, limits=limits, timeout=60.0
        )

    async def __aenter__(self) -> DotBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def login(self) -> None:
        page = await self.http.get("/accounts/login/")
        page.raise_for_status()
        fields = _hidden(page.text)
        fields.update(username=USERNAME, password=PASSWORD, next="/o/")
        response = await self.http.post("/accounts/login/", data=fields)
        if response.status_code != 302 or "login" in response.headers.get("location", ""):
            raise RuntimeError(f"DOT login refused: {response.status_code}")

    async def code(self, scope: str = "read") -> tuple[str, str]:
        """A fresh (code, verifier): the authorize page, then its consent form approved."""
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.peer.clients["web_cheap"]["client_id"],
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "openid" in scope.split():
            params["nonce"] = secrets.token_urlsafe(8)
        url = "/o/authorize/?" + urlencode(params)
        page = await self.http.get(url)
        if page.status_code != 200:
            raise RuntimeError(f"DOT authorize page: {page.status_code}")
        fields = _hidden(page.text)
        fields["allow"] = "Authorize"
        response = await self.http.post(url, data=fields)
        location = response.headers.get("location", "")
        if not location.startswith(REDIRECT) or "code=" not in urlsplit(location).query:
            raise RuntimeError(
                f"DOT authorize did not redirect with a code: {response.status_code}"
            )
        return _code_of(location), verifier

    async def codes(self, n: int, scope: str = "read", concurrency: int = 16) -> list[str]:
        """``n`` token-request bodies, each exchanging a fresh code."""
        pairs = await _gather(n, lambda: _retry(lambda: self.code(scope)), concurrency)
        return [code_body(c, v) for c, v in pairs]

    async def refresh_token(self) -> str:
        code, verifier = await self.code()
        response = await self.http.post(
            "/o/token/",
            content=code_body(code, verifier),
            headers={
                "Authorization": self.peer.auth("web_cheap"),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        response.raise_for_status()
        token: str = response.json()["refresh_token"]
        return token

    async def refresh_tokens(self, n: int, concurrency: int = 16) -> list[str]:
        """``n`` token-request bodies, each rotating the refresh token of its own grant."""
        tokens = await _gather(n, lambda: _retry(self.refresh_token), concurrency)
        return [refresh_body(t) for t in tokens]


async def _retry(make: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """``make()``, again when the connection broke: gunicorn's gthread worker may close a kept-
    alive connection as a request arrives on it when busy (a code it issued then stays unused)."""
    for _ in range(attempts - 1):
        try:
            return await make()
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    return await make()


def _hidden(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}
