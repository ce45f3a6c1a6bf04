"""The ``tokensmith`` command line (Typer)."""

from tokensmith.cli.main import app, main

__all__ = ["app", "main"]
