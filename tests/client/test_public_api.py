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
    assert "CookieKeyRing" not in names  # internals stay internal
    assert {
        "ClientAuth",
        "ClientConfig",
        "github",
        "google",
        "oidc",
        "SqlLoginStore",
        "LoginStore",
        "AppSessionStore",
    } <= set(names)


def test_deprecated_names_still_import_for_one_release() -> None:
    """The names docs/client.md documented before the rename stay importable as aliases of the
    new ones, outside ``__all__`` (so ``import *`` and the curated list show only the new)."""
    renamed = {
        "ClientStore": "LoginStore",
        "SessionStore": "AppSessionStore",
        "SqlClientStore": "SqlLoginStore",
    }
    assert tokensmith.client.__deprecated__ == renamed
    for old, new in renamed.items():
        assert getattr(tokensmith.client, old) is getattr(tokensmith.client, new)
        assert old not in tokensmith.client.__all__
    from tokensmith.client import SqlClientStore

    assert SqlClientStore is tokensmith.client.SqlLoginStore


def test_no_module_branches_on_the_provider_class() -> None:
    """Provider differences live behind the ``Provider`` protocol: outside ``providers.py`` no
    module of the toolkit mentions ``GitHubProvider`` or ``OIDCProvider`` in its code (type
    annotations under ``TYPE_CHECKING`` aside)."""
    concrete = {"GitHubProvider", "OIDCProvider"}
    for path in SRC.glob("*.py"):
        if path.stem in {"providers", "__init__"}:
            continue
        tree = ast.parse(path.read_text())
        typing_only: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                typing_only.update(id(n) for n in ast.walk(node))
            elif isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
                typing_only.update(id(n) for n in ast.walk(node.annotation))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
                typing_only.update(id(n) for n in ast.walk(node.returns))
        used = {
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id in concrete and id(node) not in typing_only
        }
        assert not used, f"{path.name} branches on {sorted(used)}"


def test_the_parts_do_not_reach_up_into_the_login_flow() -> None:
    """Data flows down: the app sessions, the upstream-token vault, the provider directory and
    the providers never import the login flow or the router that use them."""
    above = {"tokensmith.client.login", "tokensmith.client.router", "tokensmith.client.upstream"}
    for name in ("sessions", "vault", "discovery", "providers", "flow", "storage"):
        tree = ast.parse((SRC / f"{name}.py").read_text())
        modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not modules & above, name


def test_only_the_router_knows_fastapi() -> None:
    for path in SRC.glob("*.py"):
        if path.stem == "router":
            continue
        assert not imported_roots(path) & WEB, path.name


def test_protocol_modules_do_no_io() -> None:
    for name in PURE:
        assert not imported_roots(SRC / f"{name}.py") & (IO | WEB), name
