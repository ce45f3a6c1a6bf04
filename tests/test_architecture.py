"""The rule that keeps the design easy to change (DESIGN.md): ``tokensmith.core`` knows nothing
of the web, the database or the network. This test walks the AST of every module under
``src/tokensmith/core`` and fails on any import (top-level, nested, or ``TYPE_CHECKING``-only
excepted) of a web framework, database driver, HTTP client or server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "src" / "tokensmith" / "core"
FORBIDDEN = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "redis",
    "httpx",
    "uvicorn",
    "jinja2",
    "requests",
    "aiohttp",
)
# Inside ``tokensmith`` itself, core may not reach into the adapters either.
FORBIDDEN_OWN = (
    "tokensmith.server",
    "tokensmith.storage",
    "tokensmith.settings",
    "tokensmith.cli",
    "tokensmith.admin",
    "tokensmith.doctor",
    "tokensmith.client",
    "tokensmith.resource",
    "tokensmith.demo",
    "tokensmith.testing",
)


def core_modules() -> list[Path]:
    modules = sorted(CORE.rglob("*.py"))
    assert modules, f"no modules found under {CORE}"
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module named by an import statement, with its line, skipping the bodies of
    ``if TYPE_CHECKING:`` blocks (annotations only, never executed)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for line, name in imported_names(tree):
        top = name.split(".", 1)[0]
        if top in FORBIDDEN or any(
            name == own or name.startswith(own + ".") for own in FORBIDDEN_OWN
        ):
            out.append(f"{path.relative_to(CORE.parent)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_web_database_or_network(path: Path) -> None:
    assert violations(path) == []


def test_checker_catches_forbidden_imports(tmp_path: Path) -> None:
    """The checker itself works: every form of import is seen, TYPE_CHECKING blocks are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "import fastapi\n"
        "from sqlalchemy.ext.asyncio import AsyncEngine\n"
        "import redis.asyncio as r\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import httpx\n"
        "def f():\n"
        "    import uvicorn\n"
        "    from starlette.requests import Request\n"
        "    importlib.import_module('asyncpg')\n"
        "from tokensmith.server.app import create_app\n"
    )
    tree = ast.parse(sample.read_text())
    names = [name for _, name in imported_names(tree)]
    assert "httpx" not in names
    for expected in (
        "fastapi",
        "sqlalchemy.ext.asyncio",
        "redis.asyncio",
        "uvicorn",
        "starlette.requests",
        "asyncpg",
        "tokensmith.server.app",
    ):
        assert expected in names


def test_core_imports_cleanly_without_the_adapters() -> None:
    """Importing every core module does not pull in a web framework or database library."""
    import subprocess
    import sys

    modules = [
        "tokensmith.core." + str(p.relative_to(CORE).with_suffix("")).replace("/", ".")
        for p in core_modules()
        if p.name != "__init__.py"
    ]
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"core pulled in: {done.stdout.strip()}"
