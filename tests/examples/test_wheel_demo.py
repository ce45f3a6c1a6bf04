"""``pip install`` of a tokensmith wheel, then ``tokensmith demo`` in an empty folder: the demo
works from an installed package, not only from a source checkout.

The trap this proves gone: the CloudDocs apps lived in the checkout's ``examples/``, so an
installed tokensmith's ``demo`` command stopped with "runs from a source checkout". Here a wheel is
built from a copy of this checkout's packaged files, installed into a new virtual environment with
its dependencies really resolved by pip from the configured package index (about 25 s here; no
``--no-deps``, no borrowed site-packages), and its console script runs the demo with neither the
checkout nor the test run's ``PYTHONPATH`` in sight. Every address the demo prints is then opened,
the worker command it prints runs, and Ctrl-C stops it with exit status 0.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import venv
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

PIP_TIMEOUT = 300


def pip(*args: str, python: Path | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    if python is not None:
        command += ["--python", str(python)]
    done = subprocess.run(
        [*command, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built from a copy of what the package is made of (pip builds in
    the source folder; ``build/`` and an ``egg-info`` must not land in the checkout)."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    dist = tmp_path / "dist"
    pip("wheel", "--no-deps", "--wheel-dir", str(dist), str(source))
    (wheel,) = dist.glob("tokensmith-*.whl")
    return wheel


@pytest.mark.slow
def test_demo_runs_from_an_installed_wheel_in_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    pip("install", str(wheel), python=python)

    env = clean_env()
    where = subprocess.run(
        [str(python), "-c", "import tokensmith.demo.clouddocs as m; print(m.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (site_packages,) = target.glob("lib/python3*/site-packages")
    assert where.stdout.startswith(str(site_packages)), where.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    demo = Demo(
        empty / "tokensmith-demo",  # the default --dir, relative to the folder it runs in
        free_base_port(),
        tmp_path,
        command=[str(target / "bin" / "tokensmith")],
        cwd=empty,
        env=env,
        use_dir=False,
    )
    try:
        demo.start()
        with httpx.Client(follow_redirects=False, timeout=10.0) as http:
            urls = check_printed_urls_are_pages(demo, http)
            # Swagger UI's files come from the installed fastapi-offline, not a CDN
            assert f"{demo.api}/docs" in urls
            bundle = http.get(f"{demo.api}/docs-static/swagger-ui-bundle.js")
            assert bundle.status_code == 200
            assert bundle.headers["content-type"].startswith(("text/javascript", "application/"))
            # installed without the mcp extra: the demo runs and says how to add the MCP server
            assert not any(url.startswith(demo.mcp) for url in urls)
            assert "MCP server            not started: pip install 'tokensmith[mcp]'" in (
                demo.output()
            )
        assert (empty / "tokensmith-demo" / "demo.json").is_file()
        # the worker command the demo prints runs from the install too
        (worker_line,) = (
            line
            for line in demo.output().splitlines()
            if "tokensmith.demo.clouddocs.worker" in line
        )
        worker = subprocess.run(
            shlex.split(worker_line),
            env=env,
            cwd=empty,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert worker.returncode == 0, worker.stdout + worker.stderr
        assert worker.stdout.startswith("0 document(s) in CloudDocs"), worker.stdout
        assert shlex.split(worker_line)[0] == str(python)
        assert demo.stop(signal.SIGINT) == 0
    finally:
        demo.kill()
    assert "CloudDocs demo stopped." in demo.output()
