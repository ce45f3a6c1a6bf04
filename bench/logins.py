"""Logins never starve the token endpoint: ``client_credentials`` latency idle and while password
logins run, and the login rate against the raw argon2 rate.

The server verifies passwords (argon2id, the server's default cost) on a bounded pool of
``password_hash_workers`` threads, outside any transaction (``core/login.py``). This module holds
the two load loops of that scenario, each run by ``bench.run`` as its own process:

    python -m bench.logins drive --url URL --seeded FILE --in-flight 20 --seconds 3 --out FILE
    python -m bench.logins raw --threads 4 --seconds 3 --out FILE

``drive`` keeps ``--in-flight`` password logins going through the forms (``GET /authorize``,
``GET /login``, ``POST /login`` with its CSRF token; a new browser each time, each slot with its
own user), prints ``ready`` after ``--lead`` seconds, then counts the logins that finish in the
next ``--seconds``; it then starts no more and waits for those in flight (so the server is idle
afterwards). ``raw`` verifies the bench password against its argon2 hash in a plain loop on
``--threads`` threads: the most logins per second the same CPU could do with nothing around
them. Both loops are bounded in time and in count; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import LOAD_CPU, PYTHON, ROOT, SERVER_CPU, pinned, run_wrk
from bench.prepare import Browser
from bench.seed import CC_BODY, PASSWORD, Seeded

REQUEST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Cost:
    """argon2id parameters (``Settings.password_hash_*``)."""

    time_cost: int
    memory_cost: int
    parallelism: int

    @classmethod
    def of(cls, settings: Any) -> Cost:
        return cls(
            settings.password_hash_time_cost,
            settings.password_hash_memory_cost,
            settings.password_hash_parallelism,
        )

    def args(self) -> list[str]:
        return [
            f"--time-cost={self.time_cost}",
            f"--memory-cost={self.memory_cost}",
            f"--parallelism={self.parallelism}",
        ]


async def drive(
    base_url: str,
    seeded: Seeded,
    users: list[str],
    *,
    in_flight: int,
    lead: float,
    seconds: float,
    max_logins: int = 100_000,
    on_ready: Any = None,
    transport: Any = None,
) -> dict[str, Any]:
    """``in_flight`` login loops for ``lead + seconds``; the logins finished in the last
    ``seconds`` (the measured window), errors over the whole run."""
    started = time.monotonic()
    window_start = started + lead
    window_end = window_start + seconds
    done: list[float] = []
    errors: list[str] = []
    launched = [0]

    async def slot(i: int) -> None:
        username = users[i % len(users)]
        async with Browser(base_url, seeded, transport) as browser:
            while time.monotonic() < window_end and launched[0] < max_logins:
                launched[0] += 1
                try:
                    await asyncio.wait_for(browser.sign_in(username, PASSWORD), REQUEST_TIMEOUT * 3)
                except Exception as exc:  # counted, and the loop goes on (bounded)
                    errors.append(f"{type(exc).__name__}: {exc}")
                else:
                    done.append(time.monotonic())

    async def announce() -> None:
        await asyncio.sleep(lead)
        if on_ready is not None:
            on_ready()

    tasks = [asyncio.create_task(slot(i)) for i in range(in_flight)]
    await announce()
    await asyncio.wait_for(asyncio.gather(*tasks), seconds + DRAIN_TIMEOUT + REQUEST_TIMEOUT * 3)
    measured = sum(window_start <= t <= window_end for t in done)
    elapsed = time.monotonic() - started
    return {
        "logins_per_s": measured / seconds if seconds else 0.0,
        "logins": measured,
        "logins_total": len(done),
        # every login of the run over the whole run (ramp-up and drain included)
        "overall_per_s": len(done) / elapsed if elapsed else 0.0,
        "errors": len(errors),
        "drain_s": round(time.monotonic() - window_end, 2),
        "first_errors": errors[:3],
    }


def raw_rate(cost: Cost, *, threads: int, seconds: float, max_verifications: int = 10_000) -> float:
    """Verifications per second of the bench password against its argon2id hash, ``threads``
    threads each in a plain loop, for ``seconds`` (at most ``max_verifications`` in all)."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_cost, parallelism=cost.parallelism
    )
    encoded = hasher.hash(PASSWORD)
    hasher.verify(encoded, PASSWORD)  # warm: first allocation of the memory blocks
    count = [0]
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            with lock:
                if count[0] >= max_verifications:
                    return
            hasher.verify(encoded, PASSWORD)  # releases the GIL while hashing
            with lock:
                count[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count[0] / (time.monotonic() - started)


@dataclass
class LoginCase:
    """The scenario on one database: its own server process, users and rounds."""

    name: str
    server: str
    seeded: Seeded
    users: list[str]
    rounds: list[dict[str, Any]] = field(default_factory=list)


def measure(
    case: LoginCase,
    url: str,
    *,
    duration: float,
    connections: int,
    in_flight: int,
    lead: float = 1.0,
) -> dict[str, Any]:
    """One round: wrk on ``client_credentials`` idle, then again while ``drive`` (its own
    process, on the load CPU beside wrk) keeps ``in_flight`` logins going."""

    def cc() -> dict[str, float]:
        return run_wrk(
            url + "/token",
            duration=duration,
            connections=connections,
            body=CC_BODY,
            authorization=case.seeded.cc_jwt_auth,
        )

    idle = cc()
    with tempfile.TemporaryDirectory(prefix="tokensmith-logins-") as tmp:
        seeded = Path(tmp) / "seeded.json"
        seeded.write_text(json.dumps({"seeded": case.seeded.as_dict(), "users": case.users}))
        out = Path(tmp) / "logins.json"
        seconds = max(1, round(duration))  # wrk's -d
        command = [PYTHON, "-m", "bench.logins", "drive", "--url", url, "--seeded", str(seeded)]
        command += [f"--in-flight={in_flight}", f"--lead={lead}", f"--seconds={seconds}"]
        command += ["--out", str(out)]
        limit = lead + seconds + DRAIN_TIMEOUT + REQUEST_TIMEOUT * 3 + 30
        with subprocess.Popen(
            pinned(LOAD_CPU, command), cwd=ROOT, stdout=subprocess.PIPE, text=True
        ) as driver:
            try:
                assert driver.stdout is not None
                ready = driver.stdout.readline().strip() == "ready"  # or EOF: it exited
                loaded = cc() if ready else None
                driver.wait(limit)
            except BaseException:
                driver.kill()
                raise
        if driver.returncode or loaded is None:
            raise RuntimeError(f"the login driver failed (exit {driver.returncode})")
        logins = json.loads(out.read_text())
    if not loaded["requests"]:
        # not one answer in the window: wrk reports no latency (0); the truth is "at least the
        # window", which is what is recorded (a lower bound), so the ratio cannot look good
        loaded = {**loaded, "p50_ms": seconds * 1000.0, "p99_ms": seconds * 1000.0}
    return {"idle": idle, "loaded": loaded, "logins": logins}


def raw_round(cost: Cost, *, workers: int, duration: float) -> dict[str, float]:
    """The raw argon2 rates, single-threaded and on ``workers`` threads, each in its own
    process pinned to the server's CPU."""
    rates = {}
    for threads in sorted({1, workers}):
        with tempfile.TemporaryDirectory(prefix="tokensmith-argon2-") as tmp:
            out = Path(tmp) / "raw.json"
            command = [PYTHON, "-m", "bench.logins", "raw", f"--threads={threads}"]
            command += [f"--seconds={duration}", *cost.args(), "--out", str(out)]
            subprocess.run(pinned(SERVER_CPU, command), cwd=ROOT, check=True, timeout=duration + 60)
            rates[str(threads)] = float(json.loads(out.read_text())["rate"])
    return rates


def summarize(
    cases: list[LoginCase],
    raw_rounds: list[dict[str, float]],
    *,
    in_flight: int,
    workers: int,
    cost: Cost,
) -> dict[str, Any]:
    """Medians over rounds; the ratios are medians of the ratios of the same round."""

    def med(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    rows: dict[str, Any] = {}
    for case in cases:
        idle = [r["idle"] for r in case.rounds]
        loaded = [r["loaded"] for r in case.rounds]
        logins = [r["logins"] for r in case.rounds]
        pairs = list(zip(case.rounds, raw_rounds, strict=False))
        rows[case.name] = {
            "idle": {k: med([r[k] for r in idle]) for k in ("rps", "p50_ms", "p99_ms")},
            "loaded": {k: med([r[k] for r in loaded]) for k in ("rps", "p50_ms", "p99_ms")},
            "p99_ratio": med(
                [b["p99_ms"] / a["p99_ms"] for a, b in zip(idle, loaded, strict=True)]
            ),
            "p99_ratios": [
                round(b["p99_ms"] / a["p99_ms"], 2) for a, b in zip(idle, loaded, strict=True)
            ],
            "logins_per_s": med([r["logins_per_s"] for r in logins]),
            "overall_per_s": med([r["overall_per_s"] for r in logins]),
            "drain_s": med([r["drain_s"] for r in logins]),
            # against the raw rate: every login of the run over the run (a window can see none
            # finish when logins finish in bursts)
            "vs_raw_1": med(
                [r["logins"]["overall_per_s"] / raw["1"] for r, raw in pairs if raw.get("1")]
            ),
            "vs_raw_workers": med(
                [
                    r["logins"]["overall_per_s"] / raw[str(workers)]
                    for r, raw in pairs
                    if raw.get(str(workers))
                ]
            ),
            "cc_errors": int(sum(r["errors"] for r in idle + loaded)),
            "login_errors": int(sum(r["errors"] for r in logins)),
            "logins": int(sum(r["logins_total"] for r in logins)),
            "first_errors": [e for r in logins for e in r["first_errors"]][:3],
        }
    return {
        "in_flight": in_flight,
        "workers": workers,
        "cost": {
            "time_cost": cost.time_cost,
            "memory_cost_kib": cost.memory_cost,
            "parallelism": cost.parallelism,
        },
        "raw": {k: med([r[k] for r in raw_rounds]) for k in (raw_rounds[0] if raw_rounds else {})},
        "raw_rounds": raw_rounds,
        "cases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("drive", help="keep password logins in flight")
    d.add_argument("--url", required=True)
    d.add_argument("--seeded", type=Path, required=True, help="JSON: Seeded and the users")
    d.add_argument("--in-flight", type=int, default=20)
    d.add_argument("--lead", type=float, default=1.0)
    d.add_argument("--seconds", type=float, default=3.0)
    d.add_argument("--max-logins", type=int, default=100_000)
    r = sub.add_parser("raw", help="argon2 verifications per second in a plain loop")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--seconds", type=float, default=3.0)
    r.add_argument("--time-cost", type=int, required=True)
    r.add_argument("--memory-cost", type=int, required=True)
    r.add_argument("--parallelism", type=int, required=True)
    for p in (d, r):
        p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "raw":
        cost = Cost(args.time_cost, args.memory_cost, args.parallelism)
        result: dict[str, Any] = {
            "rate": raw_rate(cost, threads=args.threads, seconds=args.seconds)
        }
    else:
        if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise SystemExit("drive: loopback URLs only")
        data = json.loads(args.seeded.read_text())
        result = asyncio.run(
            drive(
                args.url,
                Seeded(**data["seeded"]),
                data["users"],
                in_flight=args.in_flight,
                lead=args.lead,
                seconds=args.seconds,
                max_logins=args.max_logins,
                on_ready=lambda: print("ready", flush=True),
            )
        )
    args.out.write_text(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
