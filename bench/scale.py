"""Scale-out (issue 17, item 6): ``tokensmith serve --workers N`` on PostgreSQL + Redis, and the
shared state each request costs, counted on the servers' side.

The scale scenarios (``python -m bench.run --only scale``) run ``client_credentials`` (JWT
ES256) and the code exchange against one ``tokensmith serve`` process and against
``--workers 2``, both on the run's PostgreSQL database and a private ``redis-server`` started
for the run (so that its command statistics count this server's commands only). Around each
wrk run the bench reads two counters, and divides their growth by wrk's requests:

- Redis ``INFO commandstats``: calls per command. Commands a Lua script runs are counted too:
  the round-trips are the ``EVALSHA`` calls plus the commands sent on their own (on these paths
  the ``GET``/``DEL``/``SET`` of the code's consumption and the rate limiter's ``LINDEX`` run
  inside scripts, as ``MONITOR`` shows);
- PostgreSQL ``pg_stat_database`` of the bench database: transactions committed and rolled
  back, and rows inserted, updated, deleted and fetched (every process's, the audit writer's
  batches included; PostgreSQL publishes an idle backend's figures up to 10 s late, so the
  readings wait ``SETTLE`` seconds: after wrk stops, after the warm-ups, and after a round's
  codes are prepared, so that neither is counted in the window).

SQL statements per request are counted in-process (``bench.cost_model`` on PostgreSQL +
Redis): a statement count does not depend on how many processes serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import free_port

SETTLE = 11.0
"""Seconds between the end of a wrk run and the reading of the counters: a PostgreSQL backend
that published its figures less than a second before going idle publishes the rest 10 s later
(``PGSTAT_IDLE_INTERVAL``)."""
PG_FIELDS = (
    "xact_commit",
    "xact_rollback",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "tup_fetched",
)
NOT_COUNTED = frozenset({"info", "ping", "config"})
"""Redis commands of the bench itself (the readings, health checks)."""
WORKERS = (1, 2)
CPUS = {1: "0", 2: "0,1"}
"""Where the servers run: one process on CPU 0 like every other server; two processes on both
CPUs of this machine, so the second shares CPU 1 with wrk (a 2-CPU machine cannot pin the load
generator apart from two server processes)."""


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[str | None]:
    """A ``redis-server`` of this run on a free loopback port (no persistence); ``None``
    when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: the scale scenarios are skipped")
        yield None
        return
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reader(database_url: str, redis_url: str) -> Callable[[], dict[str, float]]:
    """A function reading the counters now: ``redis <command>`` calls and ``pg <field>``."""
    import redis

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def pg() -> dict[str, float]:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=5)
        try:  # a new connection: no snapshot of the statistics cached from an earlier reading
            row = await conn.fetchrow(
                f"SELECT {', '.join(PG_FIELDS)} FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        assert row is not None
        return {f"pg {name}": float(row[name]) for name in PG_FIELDS}

    def read() -> dict[str, float]:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        counts = {
            f"redis {name.removeprefix('cmdstat_')}": float(value["calls"])
            for name, value in stats.items()
            if name.removeprefix("cmdstat_") not in NOT_COUNTED
        }
        return counts | asyncio.run(pg())

    return read


def per_request(
    before: dict[str, float], after: dict[str, float], requests: float
) -> dict[str, float]:
    """The growth of each counter per request (``redis commands``: all Redis commands)."""
    out = {
        key: round((after.get(key, 0.0) - before.get(key, 0.0)) / requests, 3)
        for key in sorted(set(before) | set(after))
    }
    out["redis commands"] = round(sum(v for k, v in out.items() if k.startswith("redis ")), 3)
    out["pg transactions"] = round(out["pg xact_commit"] + out["pg xact_rollback"], 3)
    return out
