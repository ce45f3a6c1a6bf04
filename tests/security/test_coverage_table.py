"""docs/security.md lists every checklist item with a status, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| ((?:BCP-C|BCP-|O21-|V-|W-)\d+) \| .* \| (tested|not applicable|gap) \| (.*) \|$"
)
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
EXPECTED = (
    [f"BCP-{i:02d}" for i in range(1, 43)]
    + [f"BCP-C{i:02d}" for i in range(1, 14)]
    + [f"O21-{i:02d}" for i in range(1, 43)]
    + [f"V-{i:02d}" for i in range(1, 63)]
    + [f"W-{i:02d}" for i in range(1, 96)]
)


def rows() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "docs" / "security.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} listed twice"
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


def test_every_checklist_item_has_a_status() -> None:
    assert sorted(rows()) == sorted(EXPECTED)


def test_tested_items_name_tests_and_others_give_a_reason() -> None:
    for item, (status, cell) in rows().items():
        refs = TEST_REF.findall(cell)
        if status == "tested":
            assert refs, item
        else:
            assert TEST_REF.sub("", cell).replace("<br>", "").strip(), f"{item}: no reason"


def test_every_named_test_exists() -> None:
    defined: dict[str, set[str]] = {}
    missing = []
    for item, (_, cell) in rows().items():
        for path, name in TEST_REF.findall(cell):
            if path not in defined:
                file = ROOT / path
                tree = ast.parse(file.read_text()) if file.exists() else ast.Module([], [])
                defined[path] = {
                    n.name
                    for n in tree.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                }
            if name not in defined[path]:
                missing.append(f"{item}: {path}::{name}")
    assert missing == []
