"""A record of the benchmark's machine while it runs, for explaining a slow round afterwards.

Every ``interval`` seconds one CSV line: the UTC time, the load average, the size of each SQLite
file in the work directory and of its write-ahead log, and each running server's CPU seconds
and resident memory. It reads ``/proc`` and file sizes only: no query, no lock, no CPU worth
counting (it runs on the load generator's side, not pinned to the server CPU).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Server

INTERVAL = 5.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def sample(workdir: Path, servers: Mapping[str, Server]) -> dict[str, str]:
    """One line of the record."""
    row = {"utc": datetime.now(UTC).strftime("%H:%M:%S")}
    try:
        row["load1"] = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        row["load1"] = ""
    for db in sorted(workdir.glob("*.db")):
        row[f"{db.name} MB"] = f"{_size(db) / 1e6:.1f}"
        row[f"{db.name}-wal MB"] = f"{_size(db.with_name(db.name + '-wal')) / 1e6:.1f}"
    for name, server in sorted(dict(servers).items()):  # a copy: servers are added meanwhile
        if server.process is None or server.process.poll() is not None:
            continue
        cpu, rss = server.cpu_seconds(), server.rss_mb()
        row[f"{name} cpu s"] = "" if cpu is None else f"{cpu:.1f}"
        row[f"{name} MB"] = "" if rss is None else f"{rss:.0f}"
    return row


class Monitor:
    """Samples in a daemon thread until ``stop``; the columns are those of the first line
    that has them (servers started later are added; a server gone leaves its column empty)."""

    def __init__(
        self, workdir: Path, servers: Mapping[str, Server], out: Path, interval: float = INTERVAL
    ) -> None:
        self.workdir, self.servers, self.out, self.interval = workdir, servers, out, interval
        self.rows: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rows.append(sample(self.workdir, self.servers))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write()

    def write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        with open(self.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
