"""The rules that keep the design easy to change (DESIGN.md): ``tokensmith.core`` knows nothing
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


# -- the rules of the house (docs/architecture.md) -------------------------------------------

SRC = CORE.parent
ROUTES = SRC / "server" / "routes"
CORE_THIRD_PARTY = {
    "jwt": "PyJWT: JOSE",
    "cryptography": "keys, signatures, AES-GCM",
    "argon2": "password hashing",
    "orjson": "the compact JWS of access tokens is serialised by hand on the hot path",
    "pyotp": "TOTP codes (RFC 6238) of the second factor: HMAC arithmetic, no I/O",
    "webauthn": "py_webauthn: WebAuthn options and response verification (CBOR, COSE), no I/O",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def resolved_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``tokensmith`` that ``path`` imports (``from pkg import mod`` names the
    module when ``pkg.mod`` is one), TYPE_CHECKING blocks excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tokensmith"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("tokensmith")
        ):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known}


def test_core_imports_only_the_standard_library_itself_and_crypto() -> None:
    """Core's dependencies: the standard library, its own modules, and the crypto/JOSE
    libraries listed in ``CORE_THIRD_PARTY`` (each with its reason)."""
    import sys

    bad = []
    for path in core_modules():
        for line, name in imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            top = name.split(".", 1)[0]
            if top == "tokensmith":
                if not (name == "tokensmith.core" or name.startswith("tokensmith.core.")):
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {name}")
            elif top not in sys.stdlib_module_names and top not in CORE_THIRD_PARTY:
                bad.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert bad == []


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_no_import_cycles_between_modules() -> None:
    """Data flows down: no two modules of ``src/tokensmith`` import each other, directly or
    through others (imports inside functions count too; only TYPE_CHECKING ones do not)."""
    known = all_modules()
    graph = {
        name: {target for target in resolved_imports(path, known) if target != name}
        for name, path in known.items()
    }
    # A package's __init__ re-exporting its modules is not a cycle with them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert import_cycles(graph) == []


def test_cycle_finder_finds_cycles() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def store_calls(path: Path) -> list[str]:
    """``stores.<store>.<method>(...)`` calls in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and isinstance(node.func.value.value, ast.Name)
            and node.func.value.value.id == "stores"
        ):
            found.append(f"{path.name}:{node.lineno} stores.{node.func.value.attr}")
    return found


def test_routes_do_not_call_stores() -> None:
    """Routes parse, make one core call and render: every store is used by core."""
    calls = [call for path in sorted(ROUTES.glob("*.py")) for call in store_calls(path)]
    assert calls == []


def test_store_call_finder_works(tmp_path: Path) -> None:
    sample = tmp_path / "route.py"
    sample.write_text("async def f(stores):\n    await stores.users.get('x')\n")
    assert store_calls(sample) == ["route.py:2 stores.users"]


# -- tests: shared code lives in tests/support, never in a test module ---------------------------

TESTS = Path(__file__).resolve().parent


def imports_of_test_modules(path: Path) -> list[str]:
    """Imports of a test module (one whose name starts with ``test_``) in a module: what a test
    shares belongs in ``tests/support/`` (or a conftest), so that moving or deleting one test
    module never breaks another."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            # ``from tests.server import test_oidc`` names the test module in the alias
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for name in names:
            if any(part.startswith("test_") for part in name.split(".")):
                found.append(f"{path.name}:{node.lineno} imports {name}")
                break
    return found


def test_no_test_module_imports_another_test_module() -> None:
    modules = sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)
    assert len(modules) > 100, modules
    found = [hit for path in modules for hit in imports_of_test_modules(path)]
    assert found == []


def test_test_module_import_finder_works(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import tests.server.harness\n"
        "from tests.support.oidc import login\n"
        "from tests.server.test_oidc import login as other\n"
        "from tests.storage import test_migration_0002\n"
        "def f():\n"
        "    import tests.server.test_throttle\n"
        "    from .test_cli import Cli\n"
    )
    assert imports_of_test_modules(sample) == [
        "test_sample.py:3 imports tests.server.test_oidc",
        "test_sample.py:4 imports tests.storage.test_migration_0002",
        "test_sample.py:6 imports tests.server.test_throttle",
        "test_sample.py:7 imports test_cli",
    ]
