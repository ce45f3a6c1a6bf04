"""The MCP server is optional: without the ``mcp`` extra (or with an ``mcp`` 1.x, which has no
``MCPServer``) the demo still starts, and says how to add the MCP server."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.settings import FAST_HASH
from tokensmith.demo import mcp_server
from tokensmith.demo.seed import DemoUrls, seed
from tokensmith.demo.servers import banner, demo_settings

ROOT = Path(__file__).resolve().parents[2]


def installed(version: str | None) -> object:
    def fake(name: str) -> str:
        assert name == "mcp"
        if version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return version

    return fake


@pytest.mark.parametrize(
    ("version", "available"),
    [(None, False), ("1.27.0", False), ("2.3.0", True), ("3.0.0rc1", True), ("dev", False)],
)
def test_mcp_counts_as_available_only_from_version_2(
    monkeypatch: pytest.MonkeyPatch, version: str | None, available: bool
) -> None:
    monkeypatch.setattr(importlib.metadata, "version", installed(version))
    assert mcp_server.mcp_available() is available


async def test_banner_without_mcp_says_how_to_enable_it(tmp_path: Path) -> None:
    urls = DemoUrls.from_base(18100)
    data = await seed(demo_settings(tmp_path, urls.issuer, **FAST_HASH), tmp_path, urls=urls)
    assert data.mcp_url == "http://localhost:18104/mcp"
    without = banner(data, tmp_path, mcp=False)
    assert "MCP server            not started: pip install 'tokensmith[mcp]' to run it" in without
    assert "18104" not in without
    assert "MCP server            http://localhost:18104/   " in banner(data, tmp_path)


def test_example_refuses_an_http_url_off_loopback() -> None:
    """RFC 9728 §1.2: the resource identifier is an https URL (http only on loopback)."""
    if not mcp_server.mcp_available():
        pytest.skip("the example stops earlier without the mcp extra")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "mcp" / "server.py"),
            "--issuer",
            "http://127.0.0.1:9000",
            "--url",
            "http://mcp.example.com/mcp",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "must use https" in done.stderr
