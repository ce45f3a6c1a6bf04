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
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.doc_samples import (
    COMPILE_ONLY,
    PAGES,
    ROOT,
    RUNNERS,
    SETUP,
    SHELL_BLOCKS,
    Block,
    all_blocks,
    blocks,
    check_command,
    example_files,
    example_for,
    logical_lines,
    make_targets,
    named_file,
    python_pages,
    script,
    sh_block,
    tokensmith_commands,
    wait_for_metadata,
)
from tokensmith.testing.ports import reserve_port


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.name)
def test_no_include_lines_left(doc: Path) -> None:
    lines = doc.read_text(encoding="utf-8").splitlines()
    left = [n for n, line in enumerate(lines, 1) if "--8<--" in line]
    assert not left, f"{doc.name}: include lines {left} render as text; inline the code"


def test_every_docs_example_file_has_a_test_that_runs_it() -> None:
    assert set(example_files()) == set(RUNNERS)
    for name, runner in RUNNERS.items():
        assert Path(name).stem in (ROOT / runner).read_text(encoding="utf-8"), (name, runner)


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
