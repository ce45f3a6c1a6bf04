"""The documentation samples' machinery (tests/docs/test_samples.py and the tests that run a
page's commands, such as tests/docs/test_readme_first_login.py): the code blocks of docs/*.md and
the README, the CLI check of their commands, and a script runner for their shell blocks."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer.main

from tests.support.settings import FAST_HASH
from tokensmith.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]


EXAMPLES = ROOT / "docs" / "examples"


PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


RUNNERS = {
    "accounts_bcrypt.py": "tests/server/test_accounts_byo.py",
    "client_github.py": "tests/client/test_docs_examples.py",
    "client_oidc_frontend.py": "tests/client/test_docs_examples.py",
    "resource_fastapi.py": "tests/resource/test_docs_examples.py",
    "resource_opaque.py": "tests/resource/test_docs_examples.py",
    "resource_validate.py": "tests/resource/test_docs_examples.py",
    "server_app.py": "tests/docs/test_server_examples.py",
    "testing_project/conftest.py": "tests/testing/test_fresh_project.py",
    "testing_project/notes_api.py": "tests/testing/test_fresh_project.py",
    "testing_project/test_notes.py": "tests/testing/test_fresh_project.py",
    "testing_project/test_reports.py": "tests/testing/test_fresh_project.py",
}


SETUP = {
    "accounts.md": "from docs.examples.accounts_bcrypt import MemberAccounts\n",
    "client.md": """
import secrets
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from tokensmith.client import ActiveSession

SECRET_32_BYTES = secrets.token_bytes(32)
GITHUB_ID, GITHUB_SECRET = "github-client-id", "github-client-secret"
GOOGLE_ID, GOOGLE_SECRET = "google-client-id", "google-client-secret"
client_id, client_secret = "client-id", "client-secret"
engine = create_async_engine("sqlite+aiosqlite:///{tmp}/client.db")
http = httpx.AsyncClient()
app = FastAPI()
""",
    "resource-server.md": "from fastapi import FastAPI\n",
}


COMPILE_ONLY = {
    'response = await auth.api(session).get("/user/repos")': (
        "calls GitHub's API for a signed-in user; tests/client/test_docs_examples.py makes the "
        "same call through client_github.py's /api/github-profile against the stand-in GitHub"
    ),
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    before: str  # the last line before the opening fence
    after: str  # the line after the closing fence

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(
            page,
            text.count("\n", 0, m.start()) + 1,
            m.group(1),
            m.group(2),
            text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1],
            text[m.end() :].lstrip("\n").split("\n", 1)[0],
        )
        for m in FENCE.finditer(text)
    ]


def all_blocks(*langs: str) -> list[Block]:
    return [block for page in PAGES for block in blocks(page) if block.lang in langs]


def example_files() -> dict[str, str]:
    return {
        path.relative_to(EXAMPLES).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(EXAMPLES.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def example_for(block: Block) -> str | None:
    return next((name for name, text in example_files().items() if text == block.code), None)


def named_file(block: Block) -> Path | None:
    """The docs/examples file a block says it is: a link right after it
    ("([docs/examples/x.py](examples/x.py), run by ...)") or a label right before it
    ("`x.py`:", a file of docs/examples/testing_project/ for docs/testing.md)."""
    linked = re.match(r"\(\[[^]]*\]\(examples/([\w/]+\.py)\)", block.after)
    if linked is not None:
        return EXAMPLES / linked.group(1)
    label = re.search(r"`([\w.-]+\.py)`:$", block.before)
    if label is not None and block.page.name == "testing.md":
        return EXAMPLES / "testing_project" / label.group(1)
    return None


def python_pages() -> list[Path]:
    return sorted({block.page for block in all_blocks("python")})


def logical_lines(code: str) -> list[str]:
    """Lines with backslash continuations joined; a console block's prompt lines only."""
    joined = re.sub(r"\\\n\s*", " ", code)
    lines = joined.splitlines()
    if any(line.startswith("$ ") for line in lines):
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [line.strip() for line in lines if line.strip()]


def tokensmith_commands(line: str) -> list[list[str]]:
    """The ``tokensmith`` invocations a line shows (``a | b`` and ``[...]`` are alternatives and
    optional parts, as in a synopsis); none for other programs."""
    words = shlex.split(line, comments=True)
    if not words or Path(words[0]).name != "tokensmith":
        return []
    text = " ".join(shlex.quote(w) if w != "|" else "|" for w in words[1:])
    commands = []
    for alternative in text.split(" | "):
        argv = shlex.split(alternative.replace("[", "").replace("]", ""))
        if commands and argv and argv[0] not in cli_group().commands:
            argv = commands[-1][: len(commands[-1]) - len(argv)] + argv  # "keys list | rotate"
        commands.append(argv)
    return commands


def cli_group() -> Any:
    """The CLI as Typer's click command tree (a group has ``commands``, each has ``params``)."""
    return typer.main.get_command(cli_app)


def option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def check_command(argv: list[str]) -> None:
    command = cli_group()
    options = option_names(command)
    for word in argv:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None and not word.startswith("-"):
            assert word in subcommands, f"tokensmith has no command {word!r} ({argv})"
            command = subcommands[word]
            options = option_names(command)
        elif word.startswith("--"):
            name = word.split("=", 1)[0]
            assert name in options | {"--help"}, f"{name} is not an option of {argv}"
    complete = getattr(command, "commands", None) is None or argv == ["--version"]
    assert complete, f"incomplete command: tokensmith {' '.join(argv)}"


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w.-]+):", text, re.MULTILINE))


SHELL_BLOCKS = all_blocks("sh", "console")


def sh_block(page: str, containing: str) -> Block:
    (block,) = (b for b in blocks(ROOT / page) if b.lang == "sh" and containing in b.code)
    return block


def script_env() -> dict[str, str]:
    """No TOKENSMITH_* setting of the caller; this checkout's code; this environment's scripts;
    cheap password hashing (argon2 cost settings only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({f"TOKENSMITH_{k.upper()}": str(v) for k, v in FAST_HASH.items()})
    return env


@dataclass
class Script:
    """A block's commands run one by one through the ``tokensmith`` console script, in a scratch
    folder, against ``database_url``. Placeholders are filled in: an exported database URL is
    the scratch database, ``--password '...'`` a real password (a command that would ask for one
    at the terminal gets it through ``--password-stdin``), ``CLIENT_ID`` the confidential client
    created last. ``a | b`` synopses run each alternative; ``doctor`` and ``serve`` are
    left to the caller (``commands_left``)."""

    database_url: str
    cwd: Path
    env: dict[str, str]
    outputs: dict[str, list[str]]  # by command ("clients create"), in order
    commands_left: list[list[str]]
    client_id: str = ""

    def run_block(self, block: Block) -> None:
        for line in logical_lines(block.code):
            words = shlex.split(line, comments=True)
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                self.env[name] = self.database_url if name.endswith("DATABASE_URL") else value
                continue
            assert Path(words[0]).name == "tokensmith", line
            for argv in tokensmith_commands(line):
                if argv[0] in ("doctor", "serve"):
                    self.commands_left.append(argv)
                else:
                    self.run(argv)

    def run(self, argv: list[str]) -> None:
        if "--password" in argv and argv[argv.index("--password") + 1] == "...":
            argv[argv.index("--password") + 1] = "a long test passphrase"
        elif argv[:2] in (["users", "create"], ["users", "set-password"]):
            argv.append("--password-stdin")  # no terminal here to type it at the prompt
        argv = [self.client_id if word == "CLIENT_ID" else word for word in argv]
        done = subprocess.run(
            ["tokensmith", *argv],
            env=self.env,
            cwd=self.cwd,
            input="a long test passphrase\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        self.outputs.setdefault(" ".join(argv[:2]), []).append(done.stdout)
        created = re.search(r'"?client_id"?: "?(ts_ci_[\w-]+)', done.stdout)
        if argv[:2] == ["clients", "create"] and created is not None and "ts_cs_" in done.stdout:
            self.client_id = created.group(1)


def script(database_url: str, tmp_path: Path) -> Script:
    return Script(database_url, tmp_path, script_env(), {}, [])


def wait_for_metadata(base: str, server: subprocess.Popen[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"tokensmith serve exited {server.returncode}: {output}")
        try:
            answer = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data
    raise AssertionError("tokensmith serve did not answer within 60 s")
