"""``tokensmith db``: the database schema and housekeeping."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin import Admin
from tokensmith.cli.app import group, load_settings, run, with_admin
from tokensmith.settings import Settings

app = group("The database schema.")


async def _upgrade(settings: Settings) -> None:
    async with Admin(settings, create_database=True):
        pass


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database. Creates it (a SQLite file and its folders) if need be
    and brings its schema up to date: the only command that creates a database."""
    settings = load_settings()
    run(lambda: _upgrade(settings))
    typer.echo("database schema is up to date")


@app.command("prune")
def db_prune(
    batch: Annotated[int, typer.Option(help="Rows per delete.", min=1)] = 1000,
    max_batches: Annotated[int, typer.Option(help="Batches per table per run.", min=1)] = 100,
) -> None:
    """Delete expired rows. Codes, sessions, login transactions, tokens, unused grants, and audit
    events older than TOKENSMITH_AUDIT_RETENTION_DAYS (365; 0 keeps them forever)."""
    days = load_settings().audit_retention_days
    report = with_admin(lambda a: a.prune(batch=batch, max_batches=max_batches))
    for table, count in report.deleted.items():
        if table == "ts_audit_events":
            typer.echo(f"{table}: {count} (older than {days} days)")
        elif count:
            typer.echo(f"{table}: {count}")
    if not days:
        typer.echo("ts_audit_events: kept forever (audit_retention_days is 0)")
    typer.echo(
        f"pruned {report.total} row(s)" + ("" if report.complete else "; more remain: run it again")
    )
