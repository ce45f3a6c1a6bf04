"""The root ``tokensmith`` command and what every command group shares: settings loading, running
an admin operation, one-line failures and ``--json`` output.

Settings come from ``TOKENSMITH_*`` variables (and ``.env``), so scripts can drive a fresh server
with no file edits. A refused operation prints one line on stderr and exits 1; bad arguments exit 2.
Every rule and refusal message lives in the admin service; this package only parses and prints.
Listings print a table for people and, with ``--json``, the fields of :mod:`tokensmith.admin.views`
for scripts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tokensmith.admin import Admin, AdminError
from tokensmith.core.keys import KeyLoadError
from tokensmith.settings import Settings

T = TypeVar("T")

#: Plain (click) help, wrapped at the terminal's width up to 120 columns: rich's boxed help cut
#: option names and descriptions at 80 columns whenever output was not a terminal.
HELP_SETTINGS: dict[str, Any] = {"max_content_width": 120, "help_option_names": ["--help", "-h"]}


def group(help: str) -> typer.Typer:
    """A command group (``tokensmith apis`` ...) with the CLI's help settings."""
    return typer.Typer(
        help=help, no_args_is_help=True, rich_markup_mode=None, context_settings=HELP_SETTINGS
    )


app = typer.Typer(
    help="tokensmith: an OAuth 2.1 and OpenID Connect authorization server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=HELP_SETTINGS,
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


def with_admin(action: Callable[[Admin], Awaitable[T]], *, create_database: bool = False) -> T:
    """Run ``action`` on the configured database. Only ``db upgrade`` creates a database: on a
    missing SQLite file every other command stops with a hint."""
    settings = load_settings()

    async def go() -> T:
        async with Admin(settings, create_database=create_database) as admin:
            return await action(admin)

    return run(go)


def emit(data: object, *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def when(timestamp: int | None, *, none: str = "-") -> str:
    """A unix time as people read it, in UTC."""
    if timestamp is None:
        return none
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str | None) -> int | None:
    """Seconds from ``3600``, ``90m``, ``12h`` or ``30d`` (``None`` stays ``None``)."""
    if value is None:
        return None
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "s")
    if not (number.isascii() and number.isdigit()):
        raise typer.BadParameter("a duration like 3600, 90m, 12h or 30d")
    return int(number) * _UNITS[unit]


def words(values: Sequence[str] | None, *, none: str = "-") -> str:
    return " ".join(values) if values else none


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> str:
    """Aligned columns under upper-case headers (never cut: long values widen their column)."""
    if not rows:
        return empty
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [[h.upper() for h in headers], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def read_password(password: str | None, from_stdin: bool) -> str:
    """The password from ``--password`` (visible in shell history and ``ps``), the first line of
    standard input (``--password-stdin``), or a hidden prompt typed twice."""
    if password is not None and from_stdin:
        raise typer.BadParameter("give --password or --password-stdin, not both")
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise fail("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        # no one to ask (a script, a pipe, cron): say so rather than read a line unannounced
        raise fail("no terminal to ask for the password: pipe it in with --password-stdin")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


PasswordOpt = Annotated[
    str | None,
    typer.Option(
        help="The password (at least 8 characters). Visible in shell history and to other users "
        "(ps): prefer the prompt (the default) or --password-stdin."
    ),
]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input's first line."),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
