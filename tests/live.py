"""A real ``tokensmith serve`` in a subprocess, for tests that talk to it over HTTP the way a
third-party client would (interoperability tests).

The server gets its own SQLite file, a free port on 127.0.0.1 and an ``http://127.0.0.1:PORT``
issuer; it is started with the same ``TOKENSMITH_*`` variables that ``tokensmith`` CLI calls
then use to register APIs, clients and users in its database (``--json`` output, parsed). Its
stdout and stderr go to a file whose tail is part of every failure message.

Use it from a module-scoped fixture (one server per test module)::

    @pytest.fixture(scope="module")
    def live(tmp_path_factory):
        with live_server(tmp_path_factory.mktemp("live")) as server:
            yield server

``live_servers`` starts several such processes together on one shared database (e.g. PostgreSQL)
and one issuer, as they would run behind a load balancer: each has its own port (``base_url``)
and log file, all of them answer for the same issuer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.support.settings import FAST_HASH

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
PASSWORD = "correct horse battery"
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tokensmith_command() -> list[str]:
    """The ``tokensmith`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("tokensmith")
    if not script.exists():
        pytest.fail(f"no tokensmith script next to {sys.executable}: run `make install`")
    return [str(script)]


@dataclass
class LiveServer:
    issuer: str
    directory: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str | None = None
    """Where this process listens, when it is not the issuer (several processes, one issuer)."""

    def url(self, path: str) -> str:
        return (self.base_url or self.issuer) + path

    def log(self, limit: int = 4000) -> str:
        """The end of the server's output (for failure messages)."""
        text = self.log_path.read_text(errors="replace")
        return text[-limit:]

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- tokensmith serve output ---\n{self.log()}", pytrace=False)

    # -- the CLI on the server's database ------------------------------------------------------

    def cli(self, *args: str) -> Any:
        """Run ``tokensmith ARGS --json`` against the server's database; its parsed output."""
        command = [*tokensmith_command(), *args, "--json"]
        try:
            done = subprocess.run(
                command,
                env=self.env,
                cwd=self.directory,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.fail(f"`tokensmith {' '.join(args)}` did not finish in {CLI_TIMEOUT} s")
            raise
        if done.returncode != 0:
            self.fail(f"`tokensmith {' '.join(args)}` exited {done.returncode}: {done.stderr}")
        return json.loads(done.stdout)

    def create_api(self, identifier: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        args = ["apis", "create", "--identifier", identifier]
        for scope in scopes:
            args += ["--scope", scope]
        result: dict[str, Any] = self.cli(*args)
        return result

    def create_client(
        self,
        name: str,
        *,
        grants: tuple[str, ...] = ("authorization_code",),
        scopes: tuple[str, ...] = (),
        redirect_uris: tuple[str, ...] = (),
        post_logout_redirect_uris: tuple[str, ...] = (),
        api: str | None = None,
        public: bool = False,
        first_party: bool = False,
        auth_method: str | None = None,
        id_token_alg: str | None = None,
    ) -> dict[str, Any]:
        """``tokensmith clients create --json``: the client, with ``client_secret`` (or None)."""
        args = ["clients", "create", "--name", name]
        for flag, values in (
            ("--grant", grants),
            ("--scope", scopes),
            ("--redirect-uri", redirect_uris),
            ("--post-logout-redirect-uri", post_logout_redirect_uris),
        ):
            for value in values:
                args += [flag, value]
        if api is not None:
            args += ["--api", api]
        if public:
            args += ["--type", "public"]
        if first_party:
            args.append("--first-party")
        if auth_method is not None:
            args += ["--auth-method", auth_method]
        if id_token_alg is not None:
            args += ["--id-token-alg", id_token_alg]
        result: dict[str, Any] = self.cli(*args)
        return result

    def create_user(
        self,
        username: str,
        *,
        password: str = PASSWORD,
        email: str | None = None,
        email_verified: bool = False,
        name: str | None = None,
    ) -> dict[str, Any]:
        args = ["users", "create", "--username", username, "--password", password]
        if email is not None:
            args += ["--email", email]
        if email_verified:
            args.append("--email-verified")
        if name is not None:
            args += ["--name", name]
        result: dict[str, Any] = self.cli(*args)
        return result

    # -- a person in a browser -----------------------------------------------------------------

    def browser(self) -> httpx.AsyncClient:
        """A new browser: its own cookie jar, redirects not followed. Close it after use."""
        return httpx.AsyncClient(follow_redirects=False, timeout=10.0)

    async def sign_in(
        self,
        ua: httpx.AsyncClient,
        authorization_url: str,
        *,
        username: str,
        password: str = PASSWORD,
        decision: str = "allow",
        pages: list[str] | None = None,
    ) -> str:
        """Open ``authorization_url`` in ``ua`` and act like the user on the login and consent
        pages (hidden ``txn`` and ``csrf_token`` kept) until the server sends the browser
        elsewhere; that URL (the client's callback) is returned. The paths of the pages shown
        are appended to ``pages``."""
        response = await ua.get(authorization_url)
        for _ in range(6):
            location = response.headers.get("location")
            if response.status_code not in (302, 303) or location is None:
                self.fail(
                    f"the authorization flow stopped at {response.request.url} with "
                    f"{response.status_code}: {response.text[:1000]}"
                )
            target = urljoin(str(response.request.url), location)
            if not target.startswith((self.issuer + "/", self.url("/"))):
                return target
            page = await ua.get(target)
            if page.status_code != 200:
                response = page
                continue
            fields = dict(_HIDDEN.findall(page.text))
            path = urlsplit(target).path
            if pages is not None:
                pages.append(path)
            if path == "/login":
                fields.update(username=username, password=password)
            else:
                fields["decision"] = decision
            response = await ua.post(urljoin(target, path), data=fields)
        self.fail("the login flow did not finish in six steps")
        raise AssertionError("unreachable")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _wait_ready(server: LiveServer, deadline: float) -> None:
    """Poll the discovery document until it answers (bounded), or fail with the server log."""
    url = server.url("/.well-known/openid-configuration")
    with httpx.Client(timeout=1.0) as http:
        while True:
            if server.process.poll() is not None:
                server.fail(f"tokensmith serve exited with {server.process.returncode}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.fail(f"tokensmith serve was not ready within {READY_TIMEOUT} s")
            time.sleep(0.05)


def serve_env(*, issuer: str, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of ``tokensmith serve`` and of CLI calls on its database: no inherited
    ``TOKENSMITH_*`` variable, cheap password hashing, ``settings`` as extra ``TOKENSMITH_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    env.update(
        TOKENSMITH_ISSUER=issuer,
        TOKENSMITH_DATABASE_URL=database_url,
        TOKENSMITH_LOG_LEVEL="WARNING",
    )
    env.update({f"TOKENSMITH_{k.upper()}": str(v) for k, v in FAST_HASH.items()})
    env.update({f"TOKENSMITH_{k.upper()}": v for k, v in settings.items()})
    return env


def spawn_server(
    directory: Path,
    env: dict[str, str],
    *,
    port: int,
    log_name: str = "serve.log",
    serve_args: tuple[str, ...] = (),
) -> LiveServer:
    """Start ``tokensmith serve`` on ``port`` (not waiting for it); output to ``log_name``;
    ``serve_args`` are extra options, e.g. ``("--http", "h11")``."""
    log_path = directory / log_name
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *tokensmith_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *serve_args,
            ],
            env=env,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return LiveServer(
        # no TOKENSMITH_ISSUER: `serve --dev` answers as http://127.0.0.1:PORT
        issuer=env.get("TOKENSMITH_ISSUER", f"http://127.0.0.1:{port}"),
        directory=directory,
        env=env,
        process=process,
        log_path=log_path,
        base_url=f"http://127.0.0.1:{port}",
    )


def stop_server(server: LiveServer) -> None:
    """Terminate the process (kill it if it does not stop in time) and wait for it."""
    process = server.process
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def live_server(
    directory: Path,
    *,
    database_url: str | None = None,
    serve_args: tuple[str, ...] = (),
    issuer: str | None = None,
    **settings: str,
) -> Iterator[LiveServer]:
    """Start ``tokensmith serve`` on a free loopback port with a new SQLite database in
    ``directory`` (or on ``database_url``); stop it (terminate, then kill) on exit.
    ``serve_args`` are extra options of ``serve``; ``issuer`` replaces its
    ``http://127.0.0.1:PORT`` (as behind a proxy: the server is still reached on its port);
    ``settings`` are extra ``TOKENSMITH_*`` values, e.g. ``access_token_ttl="120"``."""
    port = free_port()
    env = serve_env(
        issuer=issuer or f"http://127.0.0.1:{port}",
        database_url=database_url or f"sqlite+aiosqlite:///{directory / 'tokensmith.db'}",
        **settings,
    )
    server = spawn_server(directory, env, port=port, serve_args=serve_args)
    try:
        _wait_ready(server, time.monotonic() + READY_TIMEOUT)
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def live_servers(
    directory: Path, count: int, *, database_url: str, **settings: str
) -> Iterator[list[LiveServer]]:
    """Start ``count`` ``tokensmith serve`` processes at once on one database, each on its own
    free port, all with the issuer ``http://127.0.0.1:PORT`` of the first (a load balancer's
    address, in production); wait until every one answers; stop them all on exit. Their output
    goes to ``serve-0.log``, ``serve-1.log``...; ``settings`` as for :func:`live_server`."""
    ports = [free_port() for _ in range(count)]
    env = serve_env(issuer=f"http://127.0.0.1:{ports[0]}", database_url=database_url, **settings)
    servers: list[LiveServer] = []
    try:
        for index, port in enumerate(ports):
            servers.append(spawn_server(directory, env, port=port, log_name=f"serve-{index}.log"))
        deadline = time.monotonic() + READY_TIMEOUT
        for server in servers:
            _wait_ready(server, deadline)
        yield servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers:
            stop_server(server)
