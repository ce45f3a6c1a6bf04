"""``tokensmith serve``, ``demo`` and ``doctor``: run the server, the CloudDocs demo, or check the
configuration."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast
from urllib.parse import urlsplit, urlunsplit

import typer

from tokensmith.admin import Admin, AdminError
from tokensmith.cli.app import JsonOpt, app, fail, load_settings, run
from tokensmith.core.keys import KeyLoadError, KeyRing
from tokensmith.settings import Settings

if TYPE_CHECKING:
    from tokensmith.server.protocols import HttpParser


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    worker_timeout: Annotated[
        int,
        typer.Option(
            help="With --workers: seconds a worker has to start, and to answer the parent's "
            "health check, before it is killed and replaced.",
            min=1,
        ),
    ] = 30,
    loop: Annotated[
        str,
        typer.Option(help="Event loop: auto (uvloop when installed), uvloop or asyncio."),
    ] = "auto",
    http: Annotated[
        str,
        typer.Option(help="HTTP parser: auto (httptools when installed), httptools or h11."),
    ] = "auto",
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Development: without TOKENSMITH_ISSUER, use http://127.0.0.1:PORT as the "
            "issuer. Never in production.",
        ),
    ] = False,
) -> None:
    """Run the authorization server (migrates the schema first).

    Refuses to start without TOKENSMITH_ISSUER (the URL clients reach the server at), unless
    --dev; prints what it runs with (issuer, address, database, Redis, keys, workers)."""
    import uvicorn

    if loop not in ("auto", "uvloop", "asyncio"):
        raise fail("--loop must be auto, uvloop or asyncio")
    if http not in ("auto", "httptools", "h11"):
        raise fail("--http must be auto, httptools or h11")

    settings = load_settings()
    if "issuer" not in settings.model_fields_set:
        if not dev:
            raise fail(
                "TOKENSMITH_ISSUER is not set: set TOKENSMITH_ISSUER=https://auth.example.com "
                "(the URL clients reach this server at), or use `tokensmith serve --dev` to try "
                "it on this machine"
            )
        issuer = f"http://127.0.0.1:{port}"
        settings = load_settings(issuer=issuer)
        os.environ["TOKENSMITH_ISSUER"] = issuer  # for the worker processes (--workers)
    if "gc_freeze" not in settings.model_fields_set:
        # on by default for the server processes this command runs (Settings.gc_freeze)
        settings = settings.model_copy(update={"gc_freeze": True})
    if settings.email_backend == "outbox" and not _loopback_issuer(settings.issuer):
        raise fail(
            "TOKENSMITH_EMAIL_BACKEND=outbox lists every sign-up and reset link at "
            f"{settings.outbox_path} to whoever reaches this server: it is for an issuer on this "
            "machine (localhost, 127.0.0.1, ::1) only; use smtp"
        )
    from tokensmith.server.app import create_app
    from tokensmith.server.observability import configure_logging
    from tokensmith.server.protocols import uvicorn_options

    keys = run(lambda: _check_start(settings))
    typer.echo(start_summary(settings, keys, host=host, port=port, workers=workers, dev=dev))
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    # the parser's protocol with the request-head limits (431, 408 while the head arrives),
    # proxy trust, no server header, no access log: as the demo runs
    options = uvicorn_options(settings, http=cast("HttpParser", http), loop=loop)
    if workers > 1:
        # the worker processes read their settings from the environment
        os.environ["TOKENSMITH_GC_FREEZE"] = "true" if settings.gc_freeze else "false"
        uvicorn.run(
            "tokensmith.server.factory:serve_worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # uvicorn's default (5 s) counts the worker's imports: on a busy machine a worker
            # still starting was killed and replaced, again and again, and never served
            timeout_worker_healthcheck=worker_timeout,
            log_level=settings.log_level.lower(),
            **options,
        )
        return
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level=settings.log_level.lower(), **options
    )


def _loopback_issuer(issuer: str) -> bool:
    host = urlsplit(issuer).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _check_start(settings: Settings) -> KeyRing:
    """Migrate, and refuse to start (one clear line) when the signing keys cannot be read; the
    keys the server will sign with (made now when there are none, as the server would)."""
    from tokensmith.server.runtime import ensure_keys
    from tokensmith.storage.sqlalchemy.engine import create_engine

    async with Admin(settings) as admin:
        await admin.list_keys()
    engine = create_engine(settings.database_url)
    try:
        return await ensure_keys(engine, settings, time.time)
    finally:
        await engine.dispose()


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: in the user information, and in
    a ``password`` query parameter (libpq, asyncpg and redis-py read one there too)."""
    original = parts = urlsplit(url)
    if parts.query:
        fields = parts.query.split("&")
        masked = [
            f"{name}=***" if name.lower() in ("password", "passwd", "pwd") else field
            for field in fields
            for name in (field.partition("=")[0],)
        ]
        parts = parts._replace(query="&".join(masked))
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{host}")
    return url if parts == original else urlunsplit(parts)


def start_summary(
    settings: Settings, keys: KeyRing, *, host: str, port: int, workers: int, dev: bool
) -> str:
    """What ``serve`` runs with, for the operator (no secret: passwords masked)."""
    from tokensmith.server.runtime import required_algs

    now = int(time.time())
    signing = ", ".join(
        f"{alg} {keys.signing_key(alg, now).kid}"
        for alg in required_algs(settings)
        if keys.has_active(alg, now)
    )
    redis = settings.redis_url.get_secret_value() if settings.redis_url else None
    where = f"[{host}]" if ":" in host else host
    lines = [
        "tokensmith serve" + ("  (--dev: development only)" if dev else ""),
        f"  issuer:       {settings.issuer}",
        f"  listening on: http://{where}:{port}",
        f"  database:     {mask_url(settings.database_url)}",
        f"  redis:        {mask_url(redis) if redis else 'none'}",
        f"  signing keys: {signing or 'none'}",
        f"  workers:      {workers}",
        f"  gc freeze:    {'on' if settings.gc_freeze else 'off'}",
    ]
    return "\n".join(lines)


@app.command()
def demo(
    folder: Annotated[
        str, typer.Option("--dir", help="Where the demo keeps its databases and secrets.")
    ] = "tokensmith-demo",
    port: Annotated[
        int,
        typer.Option(
            help="The authorization server's port; the CloudDocs web app, API and SPA use the "
            "next three.",
            min=1,
            max=65532,
        ),
    ] = 8000,
) -> None:
    """Start the CloudDocs demo. The authorization server, the CloudDocs API, web app and SPA.

    On an empty folder it creates the SQLite databases, signing keys, a demo user and the clients;
    later runs reuse them. Ctrl-C (or SIGTERM) stops everything. The CloudDocs apps ship with
    tokensmith: an installed package is enough, no source checkout.
    """
    from tokensmith.demo.servers import DemoError, run_demo

    try:
        run_demo(Path(folder), port, echo=typer.echo)
    except DemoError as exc:
        raise fail(str(exc)) from None
    except (AdminError, KeyLoadError) as exc:
        raise fail(str(exc)) from None


@app.command()
def doctor(
    url: Annotated[
        str | None,
        typer.Option(
            help="Also check the server running at this URL, e.g. https://auth.example.com."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the configuration. With --url a running server too; exit 1 on any finding."""
    from tokensmith.doctor import diagnose

    settings = load_settings()
    report = asyncio.run(diagnose(settings, url=url))
    typer.echo(report.as_json() if as_json else report.as_text())
    if not report.ok:
        raise typer.Exit(1)
