"""The code exchange and the refresh rotation on PostgreSQL, in process (issue 17, item 3): the
ASGI app called directly (no uvicorn, no sockets), so what is measured is the server's own
Python work per request plus its round trips to PostgreSQL.

One run (``--tree``, default this tree) makes a database on the server of ``--postgres``, seeds
it, prepares the single-use codes (and refresh tokens) through ``/authorize`` and ``/token`` as
the bench's browser does (not measured), then redeems them with ``--concurrency`` tasks and
reports CPU µs per request (``time.process_time``: this process only; PostgreSQL's CPU is not
in it) and requests a second, next to client credentials (JWT) measured the same way; the
database is dropped at the end.

A/B (``--old``): each round runs both trees, each in its own process, the order alternating;
the medians of the rounds and of the per-round new/old ratios are printed.

    .venv/bin/python -m bench.ab_exchange --old ../main --rounds 5 [--n 3000]
    .venv/bin/python -m bench.ab_exchange --one --profile out.prof   # one tree, cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import token_scope

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("cc", "code", "refresh")
#: PostgreSQL's count of sessions opened on a database (pool connections made), PostgreSQL 14+
SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = $1"


async def _call(app: Any, body: bytes, auth: str) -> tuple[int, bytes]:
    """One ``POST /token`` through the ASGI app; (status, body)."""
    scope = token_scope(auth, body)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _drive(
    n: int, concurrency: int, call: Callable[[int], Awaitable[tuple[int, bytes]]]
) -> tuple[float, float]:
    """Run ``call(i)`` for i < n from ``concurrency`` tasks; (CPU µs per call, calls/s)."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            status, out = await call(i)
            if status != 200:
                raise RuntimeError(f"{status}: {out[:300]!r}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / n * 1e6, n / wall


async def one_run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    import httpx

    admin_url = args.postgres
    name = f"ts_abx_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    os.environ.update(
        TOKENSMITH_ISSUER="http://127.0.0.1:8000",
        TOKENSMITH_DATABASE_URL=f"{base}/{name}",
        TOKENSMITH_SIGNING_ALG="ES256",
        TOKENSMITH_AUTHORIZATION_CODE_TTL="600",
        TOKENSMITH_LOG_LEVEL="WARNING",
        TOKENSMITH_TOKEN_RATE_LIMIT="",
    )
    try:
        from bench.prepare import Browser, code_body, refresh_body
        from bench.seed import CC_BODY, seed
        from tokensmith.server.app import create_app
        from tokensmith.settings import Settings

        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        seeded = await seed(settings)
        app = create_app(settings)
        results: dict[str, Any] = {"tree": str(Path(__import__("tokensmith").__file__))}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with Browser("http://127.0.0.1:8000", seeded, transport) as browser:
                await browser.login()
                codes = [code_body(c, v) for c, v in await browser.codes(args.n + 200)]
                refresh = (
                    [refresh_body(t) for t in await browser.refresh_tokens(args.n + 200)]
                    if "refresh" in args.kinds
                    else []
                )
            bodies = {
                "cc": [CC_BODY.encode()] * (args.n + 200),
                "code": [b.encode() for b in codes],
                "refresh": [b.encode() for b in refresh],
            }
            auths = {"cc": seeded.cc_jwt_auth, "code": seeded.web_auth, "refresh": seeded.web_auth}
            profiler = cProfile.Profile() if args.profile else None
            for kind in args.kinds:
                own = bodies[kind]
                auth = auths[kind]
                # warm-up: the first 200 (caches, prepared statements, pool)
                await _drive(
                    200, args.concurrency, lambda i, own=own, auth=auth: _call(app, own[i], auth)
                )
                rest = own[200:]
                if profiler is not None and kind == "code":
                    profiler.enable()
                sessions = await admin.fetchval(SESSIONS, name)
                us, rps = await _drive(
                    args.n,
                    args.concurrency,
                    lambda i, rest=rest, auth=auth: _call(app, rest[i], auth),
                )
                sessions = await admin.fetchval(SESSIONS, name) - sessions
                if profiler is not None and kind == "code":
                    profiler.disable()
                results[kind] = {"cpu_us": us, "rps": rps, "connections_made": sessions}
            if profiler is not None:
                profiler.dump_stats(args.profile)
        return results
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}:{ROOT}")
    command = [sys.executable, "-m", "bench.ab_exchange", "--one", "--n", str(args.n)]
    command += ["--concurrency", str(args.concurrency), "--postgres", args.postgres]
    command += ["--kinds", ",".join(args.kinds)]
    if args.cpu is not None:
        command = ["taskset", "-c", args.cpu, *command]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--one", action="store_true", help="one run of this process's tree")
    parser.add_argument("--old", type=Path, help="the source tree before (A/B)")
    parser.add_argument("--new", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kinds", default="cc,code,refresh")
    parser.add_argument("--cpu", help="taskset CPU list for the measured process (e.g. 0)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", help="--one: cProfile the code exchanges into this file")
    args = parser.parse_args()
    args.kinds = [k for k in args.kinds.split(",") if k]
    if args.one or args.old is None:
        print(json.dumps(asyncio.run(one_run(args))))
        return
    rows: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for r in range(args.rounds):
        order = [("old", args.old), ("new", args.new)]
        for label, tree in order if r % 2 == 0 else order[::-1]:
            rows[label].append(run_tree(tree, args))
            print(label, json.dumps(rows[label][-1]), flush=True)
    print(f"median of {args.rounds} rounds (CPU µs/request of this process, req/s):")
    for kind in args.kinds:
        line = [kind.ljust(8)]
        for label in ("old", "new"):
            us = statistics.median(x[kind]["cpu_us"] for x in rows[label])
            rps = statistics.median(x[kind]["rps"] for x in rows[label])
            line.append(f"{label} {us:7.0f} µs {rps:7.0f}/s")
        cpu_ratio = statistics.median(
            n[kind]["cpu_us"] / o[kind]["cpu_us"]
            for o, n in zip(rows["old"], rows["new"], strict=True)
        )
        rps_ratio = statistics.median(
            n[kind]["rps"] / o[kind]["rps"] for o, n in zip(rows["old"], rows["new"], strict=True)
        )
        line.append(f"new/old CPU {cpu_ratio:.3f} req/s {rps_ratio:.3f}")
        print("  ".join(line))
    for label in ("old", "new"):
        for kind in ("code", "refresh"):
            if kind in args.kinds and "cc" in args.kinds:
                ratio = statistics.median(x[kind]["rps"] / x["cc"]["rps"] for x in rows[label])
                print(f"{label}: {kind} / cc req/s {ratio:.3f}")


if __name__ == "__main__":
    main()
