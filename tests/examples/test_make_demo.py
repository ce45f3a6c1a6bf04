"""``make demo``, the README's first command: its own port with ``PORT=``, only the package
installed (with pip's progress shown, the first time only), and no fight with ``make test``.

The traps this proves gone: ``make demo`` always used ports 8000-8003 (``--port`` was documented
in docs/demo.md only), and it installed the dev and benchmark extras (Playwright, schemathesis,
mypy, matplotlib) silently for 42 s before showing anything.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.examples.demo_process import (
    ROOT,
    Demo,
    check_printed_urls_are_pages,
    clean_env,
    free_base_port,
)

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")
INSTALLING = "Installing tokensmith into .venv (first run only)..."


def make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith("MAKE") and k != "PORT"}
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_demo_port_sets_the_demo_port(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"  # absent: the dry run shows the first-run install too
    moved = make("-n", "demo", "PORT=8100", f"VENV={venv}")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.splitlines()[-1] == f"{venv}/bin/tokensmith demo --port 8100"
    default = make("-n", "demo", f"VENV={venv}")
    assert default.stdout.splitlines()[-1] == f"{venv}/bin/tokensmith demo --port 8000"


def test_make_demo_installs_the_package_alone_and_visibly(tmp_path: Path) -> None:
    dry = make("-n", "demo", f"VENV={tmp_path / '.venv'}").stdout
    installs = [line for line in dry.splitlines() if "pip install" in line]
    assert len(installs) == 1, dry
    assert installs[0].rstrip(" &\\").endswith(" -e ."), installs[0]  # no [dev,bench] extras
    assert "--quiet" not in dry
    assert "-q " not in installs[0]
    assert "(first run only)..." in dry


def test_make_demo_installs_nothing_after_make_test(tmp_path: Path) -> None:
    """``make test`` installs tokensmith with its extras into the same .venv: ``make demo`` then
    uses that install as it is (no reinstall that would drop or redo anything)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copyfile(ROOT / name, checkout / name)
    stamp = checkout / ".venv" / "bin" / ".installed"  # what `make test` leaves
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    done = make(".venv/bin/.demo-installed", cwd=checkout)
    assert done.returncode == 0, done.stderr
    assert "Installing" not in done.stdout
    assert not (checkout / ".venv" / "bin" / "python").exists()  # no venv made, nothing installed
    assert (checkout / ".venv" / "bin" / ".demo-installed").exists()
    assert make("-q", ".venv/bin/.demo-installed", cwd=checkout).returncode == 0  # up to date


@pytest.mark.slow
def test_make_demo_in_a_fresh_clone_on_its_own_port(tmp_path: Path) -> None:
    """The real thing, in a copy of the checkout with no .venv: ``make demo PORT=N`` installs
    tokensmith alone (pip's output shown), then serves on N..N+3 and every printed address opens a
    page; Ctrl-C to the terminal's process group stops it; the next run installs nothing."""
    checkout = tmp_path / "checkout"
    shutil.copytree(
        ROOT / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, checkout / name)
    base = free_base_port()
    assert MAKE is not None
    demo = Demo(
        checkout / "tokensmith-demo",
        base,
        tmp_path,
        cwd=checkout,
        env={k: v for k, v in clean_env().items() if not k.startswith("MAKE")},
        argv=[MAKE, "demo", f"PORT={base}", f"PYTHON={sys.executable}"],
        start_timeout=300.0,
    )
    try:
        demo.start()
        output = demo.output()
        assert INSTALLING in output
        assert "Successfully installed" in output  # pip's own progress, not --quiet
        with httpx.Client(follow_redirects=False, timeout=10.0) as http:
            check_printed_urls_are_pages(demo, http)
        demo.stop(signal.SIGINT)
    finally:
        demo.kill()
    assert "CloudDocs demo stopped." in demo.output()
    python = checkout / ".venv" / "bin" / "python"
    for extra in ("pytest", "mypy", "playwright", "schemathesis", "matplotlib"):
        absent = subprocess.run(
            [str(python), "-c", f"import {extra}"], capture_output=True, timeout=60, check=False
        )
        assert absent.returncode != 0, f"make demo installed {extra}"
    again = make("-n", "demo", f"PORT={base}", cwd=checkout)
    assert "pip install" not in again.stdout  # installed once: the stamp is up to date
