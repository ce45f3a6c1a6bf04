"""Run the CloudDocs world: the authorization server, the CloudDocs API, web app and SPA, and
the demo MCP server (:mod:`tokensmith.demo.mcp_server`) when the ``mcp`` extra is installed.

All four are ASGI apps served by one ``uvicorn.Server`` each, **in one asyncio loop in one
process**. Subprocesses would isolate them better, but one process means one thing to start and
stop: Ctrl-C (or SIGTERM) sets every server's ``should_exit``, each one finishes its requests and
runs its lifespan shutdown (databases closed), and the command exits 0. The per-server signal
handlers of uvicorn are switched off; the loop's own handlers stop them all together. Each
server runs uvicorn as ``tokensmith serve`` does
(:func:`tokensmith.server.protocols.uvicorn_options`): the request-head limits (431, 408), the
security headers on those answers, no ``server`` header, no access log.

The CloudDocs apps ship inside the package (:mod:`tokensmith.demo.clouddocs`, templates and
static files as package data), so ``pip install tokensmith`` and then ``tokensmith demo`` in any
folder is enough: no source checkout.

The servers listen on ``127.0.0.1`` and are addressed as ``localhost`` (passkeys need a domain:
``tokensmith.demo.seed.HOST``). Cookies are not isolated by port, so all apps on ``localhost``
see each other's cookies; the defaults keep them apart with no demo-specific setting: the
authorization server's are ``tokensmith_as_*``, the web app's (client toolkit)
``tsc_<digest of its base URL>_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from tokensmith.core.clock import Clock, system_clock
from tokensmith.demo.mcp_server import MCP_INSTALL_HINT, mcp_available
from tokensmith.demo.seed import MCP_PATH, DemoData, DemoDataError, DemoUrls, ports, seed
from tokensmith.settings import Settings

__all__ = [
    "DemoApps",
    "DemoError",
    "bind",
    "build_apps",
    "demo_settings",
    "run_demo",
    "serve",
]


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def demo_settings(folder: Path, issuer: str, **overrides: Any) -> Settings:
    """The authorization server's settings for a demo kept in ``folder``."""
    values: dict[str, Any] = {
        "issuer": issuer,
        "database_url": f"sqlite+aiosqlite:///{folder / 'tokensmith.db'}",
        # self-service accounts, with the messages in a development outbox: the sign-up and
        # reset links are clickable at /dev/outbox (docs/accounts.md)
        "signup": "open",
        "email_backend": "outbox",
        "outbox_dir": str(folder / "outbox"),
    }
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class DemoApps:
    issuer: Any
    api: Any
    web: Any
    spa: Any
    mcp: Any | None = None  # None without the mcp extra


def build_apps(
    settings: Settings,
    data: DemoData,
    folder: Path,
    *,
    clock: Clock = system_clock,
    github: tuple[str, str] | None = None,
) -> DemoApps:
    """The ASGI apps of the demo, configured from the seeded ``data``."""
    from tokensmith.demo.clouddocs import api, spa_server, web
    from tokensmith.demo.landing import issuer_home
    from tokensmith.demo.mcp_server import McpServerConfig, create_mcp_server
    from tokensmith.server.app import create_app

    api_config = api.CloudDocsApiConfig(
        issuer=data.issuer,
        audience=data.api,
        database_path=folder / "clouddocs-api.sqlite3",
        spa_origin=data.spa_url,
        swagger_client_id=data.swagger_client_id,
    )
    web_config = web.CloudDocsWebConfig(
        issuer=data.issuer,
        client_id=data.web_client_id,
        client_secret=data.web_client_secret,
        base_url=data.web_url,
        api_url=data.api,
        secret_key=bytes.fromhex(data.web_secret_key),
        database_path=folder / "clouddocs-web.sqlite3",
        github_client_id=github[0] if github else None,
        github_client_secret=github[1] if github else None,
        account_url=data.issuer + settings.account_path,
    )
    spa_config = spa_server.SpaConfig.for_tokensmith(
        issuer=data.issuer, client_id=data.spa_client_id, spa_url=data.spa_url, api_url=data.api
    )
    # browser apps that call the token endpoint: the SPA, and Swagger UI on the API's origin
    issuer = create_app(settings, clock=clock, cors_origins=[data.spa_url, data.api])
    # the banner prints the issuer's address: give it a front page
    issuer.add_api_route("/", issuer_home(data, settings), methods=["GET"], include_in_schema=False)
    return DemoApps(
        issuer=issuer,
        api=api.create_api(api_config, clock=clock),
        web=web.create_web(web_config, clock=clock),
        spa=spa_server.create_spa(spa_config),
        mcp=(
            create_mcp_server(McpServerConfig(issuer=data.issuer, url=data.mcp_url))
            if mcp_available()
            else None
        ),
    )


def bind(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready socket on ``host:port``, or a :class:`DemoError` saying it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"port {port} on {host} is not free ({exc.strerror}); stop what uses it or start "
            "the demo on other ports with --port"
        ) from None
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the caller (several share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    apps: Sequence[tuple[Any, socket.socket]],
    *,
    settings: Settings,
    stop: asyncio.Event,
    on_started: Callable[[], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve each app on its socket until ``stop`` is set (or a server fails), each as
    ``tokensmith serve`` serves the authorization server of ``settings`` (its request-head
    limits and proxy trust)."""
    from tokensmith.server.protocols import uvicorn_options

    options = uvicorn_options(settings)
    servers = [
        _Server(uvicorn.Config(app, lifespan="on", log_level=log_level, **options))
        for app, _ in apps
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, (_, sock) in zip(servers, apps, strict=True)
    ]
    stopper = asyncio.create_task(stop.wait())
    try:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                raise DemoError("a server failed to start (its error is printed above)")
            await asyncio.sleep(0.02)
        if on_started is not None:
            on_started()
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            raise DemoError("a server stopped unexpectedly (its error is printed above)")
    finally:
        for server in servers:
            server.should_exit = True
        stopper.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await stopper


def banner(data: DemoData, folder: Path, *, mcp: bool = True) -> str:
    """What the demo prints once it serves: every URL in it opens a page meant for people.

    ``mcp``: whether the MCP server runs (its endpoint answers 401 without a token, so the banner
    prints its page, which links the endpoint and its metadata)."""
    mcp_origin = data.mcp_url.removesuffix(MCP_PATH)
    mcp_line = (
        f"MCP server            {mcp_origin}/   MCP over Streamable HTTP, RFC 9728 metadata"
        if mcp
        else f"MCP server            not started: {MCP_INSTALL_HINT} to run it"
    )
    return f"""
CloudDocs demo: everything runs on this machine; data in {folder}

  Open first:  {data.web_url}/   (the CloudDocs web app: "Sign in with tokensmith")
  Sign in as:  {data.username} / {data.password}

  CloudDocs web app     {data.web_url}/   server-rendered, confidential client
  CloudDocs SPA         {data.spa_url}/   single-page app: PKCE in the browser, tokens in memory
  CloudDocs API         {data.api}/docs   Swagger UI ("Authorize" signs in with PKCE)
  Authorization server  {data.issuer}/   its endpoints, discovery, your account
                        also: sign up, forgotten password, and the development outbox
                        where their e-mail lands (links on that page)
  {mcp_line}

  Clients (secrets in {folder / "demo.json"}):
    web {data.web_client_id}, SPA {data.spa_client_id}, worker {data.worker_client_id}

  The worker (client credentials, lists every document):
    {sys.executable} -m tokensmith.demo.clouddocs.worker {folder / "demo.json"}
  "Login with GitHub": set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET of a GitHub OAuth app (its
    callback is /auth/github/callback on the web app) and start the demo again.

Press Ctrl-C to stop. Running the demo again reuses this data (same password).
"""


def run_demo(folder: Path, base_port: int, *, echo: Callable[[str], None]) -> None:
    """``tokensmith demo``: seed ``folder`` (once), serve everything until Ctrl-C or SIGTERM."""
    p = ports(base_port)
    if max(p.values()) > 65535:
        raise DemoError(
            f"--port {base_port} leaves no room for the CloudDocs apps and the MCP server above it"
        )
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    urls = DemoUrls.from_base(base_port)
    sockets: list[socket.socket] = []
    try:
        names = ["issuer", "web", "api", "spa", *(["mcp"] if mcp_available() else [])]
        for name in names:
            sockets.append(bind(p[name]))
        settings = demo_settings(folder, urls.issuer)
        github_id, github_secret = (
            os.environ.get("GITHUB_CLIENT_ID"),
            os.environ.get("GITHUB_CLIENT_SECRET"),
        )
        github = (github_id, github_secret) if github_id and github_secret else None

        async def main() -> None:
            try:
                data = await seed(settings, folder, urls=urls)
            except (DemoDataError, json.JSONDecodeError) as exc:
                raise DemoError(str(exc)) from None
            apps = build_apps(settings, data, folder, github=github)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                served = [apps.issuer, apps.web, apps.api, apps.spa]
                if apps.mcp is not None:
                    served.append(apps.mcp)
                await serve(
                    list(zip(served, sockets, strict=True)),
                    settings=settings,
                    stop=stop,
                    on_started=lambda: echo(banner(data, folder, mcp=apps.mcp is not None)),
                )
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            echo("CloudDocs demo stopped.")

        asyncio.run(main())
    finally:
        for sock in sockets:
            sock.close()
