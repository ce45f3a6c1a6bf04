"""The ``tokensmith`` command line (Typer), one module per command group: :mod:`.serve` (serve,
demo, doctor), :mod:`.db`, :mod:`.apis`, :mod:`.clients`, :mod:`.users`, :mod:`.keys`; the root
command and the shared helpers are in :mod:`.app`. Every operation goes through the admin
service (:mod:`tokensmith.admin`)."""

from __future__ import annotations

import sys

# serve's commands (serve, demo, doctor) register on the root app when it is imported
from tokensmith.cli import apis, clients, db, keys, registration, serve, users  # noqa: F401
from tokensmith.cli.app import app

app.add_typer(apis.app, name="apis")
app.add_typer(clients.app, name="clients")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(registration.app, name="registration")


def main() -> None:
    """The ``tokensmith`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
