"""docs/testing.md works in a fresh project, exactly as written.

The test copies the files of the page's "A first test, in a fresh project" section — each block
labelled with its file name — into an empty folder outside this repository (so none of
tokensmith's own pytest configuration applies: no asyncio mode, no conftest) and runs the page's
command there with this environment's Python, where tokensmith is installed.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "testing.md"
SECTION = "## A first test, in a fresh project"

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
LABEL = re.compile(r"`([\w.-]+\.py)`:?$")


def section(text: str, title: str) -> str:
    return text.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def project_files(text: str) -> dict[str, str]:
    """The page's python blocks, by the file name on the line before each (none unlabelled)."""
    files: dict[str, str] = {}
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        label = LABEL.search(before[-1])
        assert label is not None, f"a python block without a file name after {before[-1]!r}"
        assert label.group(1) not in files, f"{label.group(1)} given twice"
        files[label.group(1)] = match.group(2)
    return files


def shell_commands(text: str) -> list[str]:
    return [
        line.strip()
        for match in FENCE.finditer(text)
        if match.group(1) == "sh"
        for line in match.group(2).splitlines()
        if line.strip()
    ]


def count_tests(files: dict[str, str]) -> int:
    return sum(
        1
        for name, source in files.items()
        if name.startswith("test_")
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def fresh_env() -> dict[str, str]:
    """This process's environment without pytest's and the samples' variables; this checkout's
    tokensmith first on the path (it is the one installed, in editable mode, by the set-up)."""
    drop = ("PYTEST_", "TOKENSMITH_", "NOTES_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def test_testing_guide_runs_in_a_fresh_project(tmp_path: Path) -> None:
    text = section(PAGE.read_text(encoding="utf-8"), SECTION)
    files = project_files(text)
    assert {"conftest.py", "notes_api.py", "test_notes.py", "test_reports.py"} <= set(files)
    for name, source in files.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    (command,) = shell_commands(text)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "pytest"], command

    done = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=tmp_path,
        env=fresh_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # every test passed, none skipped, and no warning (a deprecated API in a sample shows here)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"=+ {count_tests(files)} passed in [\d.]+s =+", summary), output
    assert f"rootdir: {tmp_path}\n" in done.stdout  # the fresh folder, not this repository
