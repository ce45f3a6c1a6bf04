"""The root ``tokensmith`` command and what every command group shares: settings loading, running
an admin operation, one-line failures and ``--json`` output.

Settings come from ``TOKENSMITH_*`` variables (and ``.env``), so scripts can drive a fresh server
with no file edits. A refused operation prints one line on stderr and exits 1; bad arguments exit 2.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tokensmith.admin import Admin, AdminError
from tokensmith.core.keys import KeyLoadError
from tokensmith.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    help="tokensmith: an OAuth 2.1 and OpenID Connect authorization server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"tokensmith {version('tokensmith')}")
        except PackageNotFoundError:
            raise fail("tokensmith is not installed (no package metadata)") from None
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the installed tokensmith version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    pass


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise fail(f"invalid setting {where}: {first['msg']}") from None


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(make())
    except (AdminError, KeyLoadError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach the database: {exc}") from None
    except SQLAlchemyError as exc:
        # A bad URL, an unknown dialect, refused credentials, a file that is not a database.
        reason = getattr(exc, "orig", None) or exc
        raise fail(f"cannot use the database: {first_line(reason)}") from None
    except ImportError as exc:
        raise fail(f"cannot use the database: its driver is not installed ({exc})") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def with_admin(action: Callable[[Admin], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        async with Admin(settings) as admin:
            return await action(admin)

    return run(go)


def emit(data: object, *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
