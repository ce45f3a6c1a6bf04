"""The install story of the README: ``pip install`` of this checkout gives a ``tokensmith``
command that says which version it is.

Both tests go through a real console script: the one of the environment running the tests, and
the one that ``pip install`` writes into a fresh virtual environment.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import venv
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def checkout_env() -> dict[str, str]:
    """The environment with this checkout's code first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TOKENSMITH_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def readme_install_block() -> list[str]:
    """The commands of the README's ``pip install`` block, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Running your own server", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        if "pip install" in block:
            commands = (line.split("#", 1)[0].strip() for line in block.splitlines())
            return [command for command in commands if command]
    raise AssertionError("README 'Running your own server' has no pip install block")


def test_version_option_prints_the_installed_version() -> None:
    script = Path(sys.executable).with_name("tokensmith")
    done = subprocess.run(
        [str(script), "--version"],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"tokensmith {version('tokensmith')}\n"
    assert version("tokensmith") == project_version()


@pytest.mark.slow
def test_readme_pip_install_of_the_checkout_gives_the_command(tmp_path: Path) -> None:
    """Run the README's install block for real, into a new virtual environment.

    ``/path/to/tokensmith`` is a copy of this checkout's packaged files (pip builds in the source
    folder, and an ``egg-info`` left in ``src/`` would change the metadata the tests see). The
    dependencies come from the environment running the tests (a ``.pth`` line) and ``--no-deps``
    keeps pip from fetching them again: what is proven is that the checkout builds and installs
    the command, not the dependency resolution.
    """
    install, check = readme_install_block()
    assert shlex.split(install) == ["python", "-m", "pip", "install", "/path/to/tokensmith"]
    assert check == "tokensmith --version"

    checkout = tmp_path / "tokensmith"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", checkout / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, checkout / name)
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    (site_packages,) = target.glob("lib/python3*/site-packages")
    here = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (site_packages / "deps.pth").write_text(f"{here}\n")
    env = {k: v for k, v in checkout_env().items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python")]
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--quiet", str(checkout)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    installed = target / "bin" / "tokensmith"
    done = subprocess.run(
        [str(installed), "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"tokensmith {project_version()}\n"
    where = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import tokensmith; print(tokensmith.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.startswith(str(site_packages)), where.stdout
