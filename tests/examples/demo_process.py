"""``tokensmith demo`` as a subprocess, the way a person starts it, and what its banner promises.

Shared by the tests of the command run from this checkout (``test_demo_command.py``) and from a
wheel installed into a fresh virtual environment (``test_wheel_demo.py``).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_COMMAND = (sys.executable, "-c", "from tokensmith.cli import main; main()")

# What a person who opens each address of the banner must see: a page titled like this.
PAGE_TITLES = {
    "issuer": "tokensmith authorization server",
    "web": "CloudDocs",
    "api": "Swagger UI",
    "spa": "CloudDocs SPA",
    "mcp": "tokensmith demo MCP server",
}
_URL = re.compile(r"https?://[^\s)\"'<>]+")
_TITLE = re.compile(r"<title>([^<]+)</title>", re.IGNORECASE)


def free_base_port() -> int:
    """A base port with it and the next four free (checked by binding them)."""
    for _ in range(50):
        base = random.randint(20000, 32000)  # below Linux's ephemeral ports
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + 5):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise AssertionError("no five consecutive free ports")


def clean_env() -> dict[str, str]:
    """The environment without the settings a developer may have exported (the demo configures
    itself) and without the test run's ``PYTHONPATH``."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKENSMITH_", "GITHUB_", "PYTEST_")) and k != "PYTHONPATH"
    }


def checkout_env() -> dict[str, str]:
    """:func:`clean_env` with this checkout's code first on the path, wherever the demo runs."""
    return {**clean_env(), "PYTHONPATH": str(ROOT / "src")}


class Demo:
    """``tokensmith demo --dir FOLDER --port BASE`` started by ``command``, output in a log."""

    def __init__(
        self,
        folder: Path,
        base: int,
        logs: Path,
        *,
        command: Sequence[str] = CHECKOUT_COMMAND,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        use_dir: bool = True,
        argv: Sequence[str] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        """``argv`` replaces the whole command line (``make demo PORT=...``); it then runs in a
        process group of its own, which :meth:`stop` signals as a terminal's Ctrl-C would."""
        self.folder, self.base, self.logs = folder, base, logs
        self.command, self.cwd, self.use_dir = list(command), cwd or folder.parent, use_dir
        self.env, self.argv, self.start_timeout = env, argv, start_timeout
        self.log = logs / "demo-0.log"
        self.runs = 0
        self.issuer = f"http://localhost:{base}"
        self.web = f"http://localhost:{base + 1}"
        self.api = f"http://localhost:{base + 2}"
        self.spa = f"http://localhost:{base + 3}"
        self.mcp = f"http://localhost:{base + 4}"  # only with the mcp extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        self.log = self.logs / f"demo-{self.runs}.log"  # one log per run
        env = self.env if self.env is not None else checkout_env()
        where = ["--dir", str(self.folder)] if self.use_dir else []
        argv = self.argv or [*self.command, "demo", *where, "--port", str(self.base)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=self.argv is not None,
            )
        deadline = time.monotonic() + self.start_timeout
        while "Press Ctrl-C" not in self.output():
            assert self.process.poll() is None, f"the demo exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"the demo did not start:\n{self.output()}"
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        if self.argv is not None:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process is None:
            return
        if self.argv is not None:  # the whole group: make and the demo it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def origins(self) -> dict[str, str]:
        """The four servers that always run (the MCP server needs the mcp extra)."""
        return {"issuer": self.issuer, "web": self.web, "api": self.api, "spa": self.spa}


def printed_urls(output: str) -> list[str]:
    """Every http(s) address in the demo's banner (the last one in ``output``, which may start
    with ``make``'s and pip's lines), in order, without repeats."""
    banner = output.rsplit("CloudDocs demo: ", 1)[-1]
    return list(dict.fromkeys(_URL.findall(banner)))


def check_printed_urls_are_pages(demo: Demo, http: httpx.Client) -> list[str]:
    """Open every address the banner prints, as a browser would: each one must answer 200 with
    an HTML page titled for what it is (no JSON, no 404), and each of the four servers must be
    among them. Returns the addresses checked."""
    urls = printed_urls(demo.output())
    origins = demo.origins()
    for name, origin in origins.items():
        assert any(url.startswith(origin + "/") for url in urls), f"no {name} URL in the banner"
    origins["mcp"] = demo.mcp
    for url in urls:
        (name,) = (n for n, origin in origins.items() if url.startswith(origin + "/"))
        response = http.get(url, headers={"Accept": "text/html"})
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:200]}"
        content_type = response.headers["content-type"]
        assert content_type.startswith("text/html"), f"{url}: {content_type} {response.text[:200]}"
        title = _TITLE.search(response.text)
        assert title is not None, f"{url}: a page without a title"
        assert PAGE_TITLES[name] in title.group(1), f"{url}: titled {title.group(1)!r}"
    return urls
