"""``tokensmith serve``, ``demo`` and ``doctor``: run the server, the CloudDocs demo, or check the
configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from tokensmith.admin import Admin, AdminError
from tokensmith.cli.app import JsonOpt, app, fail, load_settings, run
from tokensmith.core.keys import KeyLoadError
from tokensmith.settings import Settings

if TYPE_CHECKING:
    from tokensmith.server.protocols import HttpParser


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    loop: Annotated[
        str,
        typer.Option(help="Event loop: auto (uvloop when installed), uvloop or asyncio."),
    ] = "auto",
    http: Annotated[
        str,
        typer.Option(help="HTTP parser: auto (httptools when installed), httptools or h11."),
    ] = "auto",
) -> None:
    """Run the authorization server (migrates the schema first)."""
    import uvicorn

    if loop not in ("auto", "uvloop", "asyncio"):
        raise fail("--loop must be auto, uvloop or asyncio")
    if http not in ("auto", "httptools", "h11"):
        raise fail("--http must be auto, httptools or h11")

    settings = load_settings()
    from tokensmith.server.app import create_app
    from tokensmith.server.observability import configure_logging
    from tokensmith.server.protocols import http_protocol

    run(lambda: _check_start(settings))
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    proxy: dict[str, Any] = {
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "server_header": False,
        "loop": loop,
        # the parser's protocol with the request-head limits (431, 408 while the head arrives)
        "http": http_protocol(
            cast("HttpParser", http),
            max_header_bytes=settings.max_header_bytes,
            max_header_fields=settings.max_header_fields,
            header_read_timeout=settings.header_read_timeout,
        ),
    }
    if workers > 1:
        uvicorn.run(
            "tokensmith.server.factory:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            **proxy,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        **proxy,
    )


async def _check_start(settings: Settings) -> None:
    """Migrate, and refuse to start (one clear line) when the signing keys cannot be read."""
    async with Admin(settings) as admin:
        await admin.list_keys()


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
