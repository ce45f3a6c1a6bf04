"""The tokensmith command run in-process (Typer's runner) against one database."""

from __future__ import annotations

import json
import re
from typing import Any

from typer.testing import CliRunner, Result

from tests.support.settings import FAST_HASH
from tokensmith.cli import app


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {"TOKENSMITH_DATABASE_URL": database_url, "TOKENSMITH_ISSUER": "https://as.test"}
    env.update({f"TOKENSMITH_{k.upper()}": str(v) for k, v in FAST_HASH.items()})
    env.update(extra)
    return env


class Cli:
    def __init__(self, database_url: str, **extra: str) -> None:
        self.env = cli_env(database_url, **extra)
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True, input: str | None = None) -> Result:
        result = self.runner.invoke(app, list(args), env=self.env, input=input)
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        assert_no_traceback(result)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def refused(self, *args: str, code: int = 1, match: str = "") -> str:
        """Run a command that must fail cleanly; its error message."""
        result = self(*args, ok=False)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        error = result.stderr.strip()
        if code == 1:
            assert error.startswith("error: "), error
            assert len(error.splitlines()) == 1, error
        assert re.search(match, error, re.IGNORECASE), (match, error)
        return error


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
