"""The CloudDocs apps use only tokensmith's public API (DESIGN.md), now that they live inside the
package (``tokensmith.demo.clouddocs``) where reaching into internals would be one import away.

Every ``tokensmith`` import of their modules names ``tokensmith.resource`` or ``tokensmith.client``
and only names those packages export in ``__all__``; no relative imports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tokensmith.demo.clouddocs

APPS = Path(tokensmith.demo.clouddocs.__file__).parent
PUBLIC = ("tokensmith.resource", "tokensmith.client")


def tokensmith_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of each import of a ``tokensmith`` module (``.`` for relative)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module.split(".")[0] == "tokensmith":
                found.append((node.lineno, module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, [])
                for alias in node.names
                if alias.name.split(".")[0] == "tokensmith"
            )
    return found


@pytest.mark.parametrize("path", sorted(APPS.glob("*.py")), ids=lambda p: p.name)
def test_clouddocs_apps_import_only_the_public_api(path: Path) -> None:
    for line, module, names in tokensmith_imports(path):
        where = f"{path.name}:{line}"
        assert module in PUBLIC, f"{where} imports {module}, not one of {PUBLIC}"
        exported = set(importlib.import_module(module).__all__)
        assert set(names) <= exported, f"{where}: {set(names) - exported} not in {module}.__all__"


def test_the_import_check_sees_an_internal_import(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        "from tokensmith.client.flow import x\nfrom . import y\nimport tokensmith.core\n"
    )
    assert [module for _, module, _ in tokensmith_imports(app)] == [
        "tokensmith.client.flow",
        ".",
        "tokensmith.core",
    ]
