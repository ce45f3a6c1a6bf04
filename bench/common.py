"""Processes, pinning and wrk: the plumbing shared by the benchmark scenarios.

Every server runs on CPU 0 and wrk on CPU 1 (``taskset``), on loopback only; every load run is
bounded by wrk's ``-d`` duration.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua" / "bench.lua"
PYTHON = sys.executable
SERVER_CPU = "0"
LOAD_CPU = "1"


def token_scope(authorization: str, body: bytes) -> dict[str, Any]:
    """The ASGI scope a server hands the app for one form ``POST /token`` with
    ``authorization`` (the in-process scripts, ``ab_token`` and ``ab_exchange``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/token",
        "raw_path": b"/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", authorization.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: str, command: list[str]) -> list[str]:
    """``command`` pinned to ``cpu`` when taskset exists and the machine has two CPUs."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpu, *command]
    return command


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is missing: install it (Debian/Ubuntu: sudo apt-get install -y wrk)")
    print("installing wrk with apt-get ...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet).returncode:
        subprocess.run(["apt-get", "update"], check=True, **quiet)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, **quiet)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


@dataclass
class Server:
    """A server process of the benchmark, pinned to the server CPU."""

    name: str
    port: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    health: str = "/"
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    cpus: str = SERVER_CPU
    """The CPUs it is pinned to (``taskset -c``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path, timeout: float = 60.0) -> None:
        self.log = log_dir / f"{self.name}.log"
        env = {**os.environ, **self.env}
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                pinned(self.cpus, self.command),
                env=env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}\n{self.tail()}")
            try:
                httpx.get(self.url + self.health, timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {timeout} s: see {self.log}")

    def tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (VmRSS), in MB."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the server process and its descendants
        (gunicorn's or ``serve --workers``' worker processes), from ``/proc``."""
        if self.process is None:
            return None
        return process_tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_tree_cpu_seconds(root: int) -> float | None:
    """User + system CPU seconds of process ``root`` and every live descendant (``/proc``);
    None when ``root`` is gone. Descendants that exited are not counted."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces: split after it
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    if root not in stats:
        return None
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        total += stats[pid][1]
        frontier += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    method: str = "POST",
    body: str | None = None,
    bodies: list[str] | None = None,
    authorization: str | None = None,
) -> dict[str, float]:
    """One bounded wrk run on the load CPU; requests/s, p50/p99 (ms) and errors."""
    with tempfile.TemporaryDirectory(prefix="tokensmith-wrk-") as tmp:
        out = Path(tmp) / "out.json"
        env = {**os.environ, "BENCH_OUT": str(out), "BENCH_METHOD": method}
        if body is not None:
            env["BENCH_BODY"] = body
        if bodies is not None:
            path = Path(tmp) / "bodies.txt"
            path.write_text("\n".join(bodies) + "\n")
            env["BENCH_BODIES"] = str(path)
        if authorization:
            env["BENCH_AUTH"] = authorization
        command = [
            ensure_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ]
        subprocess.run(
            pinned(LOAD_CPU, command),
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=duration + 60,
        )
        raw = json.loads(out.read_text())
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["status_errors"] + raw["socket_errors"],
    }
