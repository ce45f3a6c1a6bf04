"""The curated public API and the layering of tokensmith.client."""

from __future__ import annotations

import ast
from pathlib import Path

import tokensmith.client

SRC = Path(tokensmith.client.__file__).parent
WEB = {"fastapi", "starlette"}
IO = {"httpx", "sqlalchemy", "redis"}
PURE = ("crypto", "transaction", "id_token", "logout_token", "models", "pages", "errors")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_all_is_curated_and_importable() -> None:
    names = tokensmith.client.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(tokensmith.client, name) is not None
    assert "KeyRing" not in names  # internals stay internal
    assert {"ClientAuth", "ClientConfig", "github", "google", "oidc", "SqlClientStore"} <= set(
        names
    )


def test_only_the_router_knows_fastapi() -> None:
    for path in SRC.glob("*.py"):
        if path.stem == "router":
            continue
        assert not imported_roots(path) & WEB, path.name


def test_protocol_modules_do_no_io() -> None:
    for name in PURE:
        assert not imported_roots(SRC / f"{name}.py") & (IO | WEB), name
