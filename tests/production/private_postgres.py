"""A private PostgreSQL cluster for fault tests: ``initdb`` in a temporary folder, its own port
on 127.0.0.1, stopped and started by the test, so that stopping it disturbs nothing else.

PostgreSQL refuses to run as root; when the tests run as root the cluster belongs to the
``postgres`` account (``runuser -u postgres --``) and lives in a folder made for it. When the
server binaries or that account are missing the test is skipped (failed in CI) with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.live import free_port
from tests.services import unavailable

COMMAND_TIMEOUT = 60.0


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        unavailable("PostgreSQL server binaries: no initdb under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _binaries()
        self.prefix: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="ts-private-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                runuser = None
            if runuser is None:
                shutil.rmtree(self.folder, ignore_errors=True)
                unavailable("a private PostgreSQL as root needs runuser and a postgres account")
            self.prefix = [str(runuser), "-u", "postgres", "--"]
            shutil.chown(self.folder, user="postgres", group=None)
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self.port = free_port()
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def log(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.prefix, str(self.bin / tool), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, cwd=self.folder
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n"
                f"--- postgres log ---\n{self.log()}"
            )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off "
            "-c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "start"
        )
        self.running = True

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, as in a crash of the clients' view."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        """Stop the cluster if a postmaster runs (also after a failed start), remove the folder."""
        try:
            if self.running or (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                self.running = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
