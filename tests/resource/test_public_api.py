"""The curated public API and the layering rule of tokensmith.resource."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tokensmith.resource
import tokensmith.testing


@pytest.mark.parametrize("package", [tokensmith.resource, tokensmith.testing])
def test_all_names_importable_and_sorted(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert getattr(package, name) is not None


def test_no_private_names_exported() -> None:
    assert not [n for n in tokensmith.resource.__all__ if n.startswith("_")]


@pytest.mark.parametrize(
    "module",
    [
        "tokensmith.resource",
        "tokensmith.resource.jwt_validator",
        "tokensmith.resource.jwks",
        "tokensmith.resource.introspection",
        "tokensmith.resource.discovery",
    ],
)
def test_validation_core_does_not_import_web_frameworks(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(','.join(m for m in ('fastapi', 'starlette') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
