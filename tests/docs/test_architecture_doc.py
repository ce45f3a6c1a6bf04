"""docs/architecture.md names real code: every ``src/tokensmith/...py`` path (and folder) it
cites exists, every dotted ``tokensmith.x.y`` name resolves to a module or an attribute of one
(classes' methods and properties included), and every ``tests/...py`` file and
``tests/...py::test_name`` it cites exists. A rename that forgets the page fails here."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"

SRC_PATH = re.compile(r"\bsrc/tokensmith(?:/\w+)*(?:\.py|/)")
TEST_PATH = re.compile(r"\btests/[\w/]+\.py(?:::\w+)?")
DOTTED = re.compile(r"\btokensmith(?:\.[A-Za-z_]\w*)+")


def cited(pattern: re.Pattern[str]) -> list[str]:
    return sorted(set(pattern.findall(PAGE.read_text(encoding="utf-8"))))


def resolves(dotted: str) -> bool:
    """The longest importable prefix is a module; the rest are attributes of it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_the_page_cites_code() -> None:
    """The checks below have something to check (a page that lost its names would pass them)."""
    assert len(cited(SRC_PATH)) >= 20
    assert len(cited(DOTTED)) >= 40
    assert len(cited(TEST_PATH)) >= 5


@pytest.mark.parametrize("path", cited(SRC_PATH))
def test_cited_source_path_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"docs/architecture.md cites {path}, which does not exist"


@pytest.mark.parametrize("name", cited(DOTTED))
def test_cited_dotted_name_exists(name: str) -> None:
    assert resolves(name), f"docs/architecture.md cites {name}, which does not exist"


@pytest.mark.parametrize("cite", cited(TEST_PATH))
def test_cited_test_exists(cite: str) -> None:
    path, _, function = cite.partition("::")
    assert (ROOT / path).is_file(), f"docs/architecture.md cites {path}, which does not exist"
    if function:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        names = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        assert function in names, f"docs/architecture.md cites {cite}, which does not exist"


def test_checker_rejects_missing_names() -> None:
    assert resolves("tokensmith.core.token.TokenEndpoint.handle")
    assert not resolves("tokensmith.core.token.TokenEndpoint.no_such_step")
    assert not resolves("tokensmith.core.no_such_module")
    assert not resolves("tokensmith.server.audit")
