"""Every code sample of the documentation (docs/*.md and the README) renders where it is read and
runs.

* No ``--8<--`` include line is left: there is no docs site to expand them, so readers saw the
  include line instead of the code.
* A ``python`` block is either byte for byte a file under docs/examples/ that a named test runs,
  or it is run here: the blocks of one page in order, in one namespace that ``SETUP`` seeds with
  the names the page assumes (a secret, an engine, ...). Only the blocks in ``COMPILE_ONLY`` are
  merely compiled, each with its reason.
* Every ``tokensmith`` command of a ``sh`` or ``console`` block names a real command and real
  options of the CLI, every ``make`` command a real target; the README's "Running your own
  server" block is run for real through the ``tokensmith`` console script, against a temporary
  database, up to a server that answers its metadata.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from tests.support.settings import FAST_HASH
from tokensmith.cli import app as cli_app
from tokensmith.testing.ports import reserve_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)

# docs/examples/ files and the test that runs each (it must name the file, without ".py").
RUNNERS = {
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

# What a page's fragments take as given, defined before its blocks run ({tmp}: a fresh folder).
SETUP = {
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

# Blocks only compiled (matched by a part of their text), and why.
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


# -- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.name)
def test_no_include_lines_left(doc: Path) -> None:
    lines = doc.read_text(encoding="utf-8").splitlines()
    left = [n for n, line in enumerate(lines, 1) if "--8<--" in line]
    assert not left, f"{doc.name}: include lines {left} render as text; inline the code"


def test_every_docs_example_file_has_a_test_that_runs_it() -> None:
    assert set(example_files()) == set(RUNNERS)
    for name, runner in RUNNERS.items():
        assert Path(name).stem in (ROOT / runner).read_text(encoding="utf-8"), (name, runner)


# -- python blocks -----------------------------------------------------------------------------


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


@pytest.mark.parametrize("block", all_blocks("python"), ids=str)
def test_a_block_that_names_its_file_is_that_file(block: Block) -> None:
    """What readers see is what the tests run."""
    path = named_file(block)
    if path is None:
        return
    assert block.code == path.read_text(encoding="utf-8"), f"{block} differs from {path}"


def test_blocks_name_their_files() -> None:
    named = {named_file(block) for block in all_blocks("python")} - {None}
    assert len(named) == 7  # resource-server.md: 3, testing.md: 4


def python_pages() -> list[Path]:
    return sorted({block.page for block in all_blocks("python")})


@pytest.mark.parametrize("doc", python_pages(), ids=lambda p: p.name)
async def test_python_samples_run(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a sample that creates a file (./ts.db) creates it here
    namespace: dict[str, Any] = {"__name__": f"docs_sample_{doc.stem.replace('-', '_')}"}
    exec(SETUP.get(doc.name, "").replace("{tmp}", str(tmp_path)), namespace)
    ran = 0
    for block in blocks(doc):
        if block.lang != "python" or example_for(block) is not None:
            continue  # a docs/examples file: its test runs it
        code = compile(block.code, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if any(part in block.code for part in COMPILE_ONLY):
            continue
        result = eval(code, namespace)
        if result is not None:  # a block with a top-level await
            await result
        ran += 1
    for value in namespace.values():
        if isinstance(value, httpx.AsyncClient):
            await value.aclose()
    if "engine" in namespace:
        await namespace["engine"].dispose()
    assert ran or doc.name not in SETUP


def test_compile_only_blocks_exist() -> None:
    for part in COMPILE_ONLY:
        matches = [block for block in all_blocks("python") if part in block.code]
        assert len(matches) == 1, f"COMPILE_ONLY {part!r} matches {len(matches)} blocks"


# -- shell blocks: commands checked against the CLI and the Makefile ----------------------------


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


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=str)
def test_shell_commands_exist(block: Block) -> None:
    for line in logical_lines(block.code):
        for argv in tokensmith_commands(line):
            check_command(argv)
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            assert set(words[1:]) <= make_targets(), line


def test_the_command_check_catches_a_wrong_option() -> None:
    with pytest.raises(AssertionError, match="--colour"):
        check_command(["clients", "create", "--name", "x", "--colour", "red"])
    with pytest.raises(AssertionError, match="no command 'frobnicate'"):
        check_command(["keys", "frobnicate"])
    assert tokensmith_commands("tokensmith keys list | keys rotate | prune") == [
        ["keys", "list"],
        ["keys", "rotate"],
        ["keys", "prune"],
    ]


# -- shell blocks run for real ----------------------------------------------------------------


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


@pytest.mark.slow
def test_registering_commands_run(database_url: str, tmp_path: Path) -> None:
    """docs/authorization-server.md's block: every command but ``doctor`` (checked against the
    CLI above: on a scratch configuration it has findings and exits 1, by design)."""
    run = script(database_url, tmp_path)
    run.env["TOKENSMITH_ISSUER"] = "https://auth.example.com"
    run.run_block(sh_block("docs/authorization-server.md", "tokensmith apis create"))
    assert [argv[0] for argv in run.commands_left] == ["doctor"]
    assert json.loads(run.outputs["clients create"][0])["name"] == "CloudDocs"
    assert len(run.outputs["clients create"]) == 4
    (rotated,) = run.outputs["clients rotate-secret"]
    assert rotated.startswith("client_secret: ts_cs_")
    assert len(run.outputs["keys rotate"]) == 1
    run.run(["users", "list", "--json"])
    (alice,) = json.loads(run.outputs["users list"][0])
    assert (alice["name"], alice["email_verified"]) == ("Alice Liddell", True)


@pytest.mark.slow
def test_readme_server_commands_run(database_url: str, tmp_path: Path) -> None:
    """The README's block, up to a server that answers its metadata; it listens on 127.0.0.1 and
    a free port instead of 0.0.0.0:8000."""
    run = script(database_url, tmp_path)
    run.run_block(sh_block("README.md", "tokensmith serve"))
    client = json.loads(run.outputs["clients create"][0])
    assert client["apis"] == ["https://api.example.com"]
    assert client["client_secret"]
    assert "docs:read" in client["scopes"]

    (serve,) = run.commands_left
    serve = ["tokensmith", *serve]
    assert serve[serve.index("--host") + 1] == "0.0.0.0"
    sock = reserve_port()
    port = sock.getsockname()[1]
    sock.close()  # uvicorn binds it itself: a tiny window in which another process could take it
    serve[serve.index("--host") + 1] = "127.0.0.1"
    serve[serve.index("--port") + 1] = str(port)
    server = subprocess.Popen(
        serve, env=run.env, cwd=run.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        metadata = wait_for_metadata(f"http://127.0.0.1:{port}", server)
        assert metadata["issuer"] == "https://auth.example.com"
        assert "authorization_code" in metadata["grant_types_supported"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


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
