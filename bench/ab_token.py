"""In-process cost of one ``client_credentials`` request (JWT ES256), for two source trees side by
side and, with ``--without``, for this tree with parts of the request taken out.

The app is called directly (no network, no uvicorn) on uvloop, one request after another on
a seeded SQLite file, with warm caches; the figure is CPU time (``time.process_time``, so
another process on the machine weighs less than on a wall clock) per request, the median of
``--rounds`` rounds of ``--requests`` requests.

    .venv/bin/python -m bench.ab_token --tree /path/to/older/worktree --pairs 3
    .venv/bin/python -m bench.ab_token --without sign,audit,middleware

``--tree``: the other tree (e.g. ``git worktree add ../base <commit>``); each tree runs in its
own process, alternating ``--pairs`` times (A B A B ...), and the ratio is the median of the
pairs' ratios. ``--without`` (this tree only, interleaved within one process): ``sign`` (the
ES256 signature replaced by 64 fixed bytes), ``audit`` (the audit event not emitted),
``middleware`` (the request handed straight to the fast routes, without the error, CORS,
request-id/metrics and security-header layers): what each part costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, token_scope

CC_BODY = b"grant_type=client_credentials&scope=docs%3Aread"


async def measure(configs: list[frozenset[str]], rounds: int, requests: int) -> dict[str, float]:
    """Median CPU µs per request for each configuration (this process's tokensmith)."""
    import tokensmith.core.jwt_access_token as jwt_access_token
    from tokensmith.core.token import TokenEndpoint

    off: set[str] = set()
    signature = jwt_access_token._signature
    audit = TokenEndpoint.audit

    def fake_signature(key: Any, signing_input: bytes) -> bytes | None:
        return b"\0" * 64 if "sign" in off else signature(key, signing_input)

    def maybe_audit(self: TokenEndpoint, exchange: Any) -> None:
        if "audit" not in off:
            audit(self, exchange)

    jwt_access_token._signature = fake_signature  # type: ignore[assignment]
    TokenEndpoint.audit = maybe_audit  # type: ignore[method-assign]

    folder = tempfile.mkdtemp(prefix="tokensmith-ab-token-")
    try:
        return await _measure_in(folder, configs, rounds, requests, off)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _measure_in(
    folder: str, configs: list[frozenset[str]], rounds: int, requests: int, off: set[str]
) -> dict[str, float]:
    from bench.seed import seed
    from tokensmith.server import create_app
    from tokensmith.settings import Settings

    os.environ.update(
        {
            "TOKENSMITH_ISSUER": "http://127.0.0.1:9",
            "TOKENSMITH_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/ab.db",
            "TOKENSMITH_SIGNING_ALG": "ES256",
            "TOKENSMITH_LOG_LEVEL": "WARNING",
            "TOKENSMITH_TOKEN_RATE_LIMIT": "",
        }
    )
    seeded = await seed(Settings())
    app: Any = create_app(Settings())
    scope = token_scope(seeded.cc_jwt_auth, CC_BODY)
    statuses: set[int] = set()

    async def one(target: Any) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": CC_BODY, "more_body": False}
            await asyncio.sleep(3600)
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.add(message["status"])

        await target({**scope, "app": app}, receive, send)

    figures: dict[str, list[float]] = defaultdict(list)
    async with app.router.lifespan_context(app):
        for _ in range(300):
            await one(app)
        branch = getattr(app, "_fast_branch", None)
        for _ in range(rounds):
            for config in configs:
                off.clear()
                off.update(config)
                target = branch if "middleware" in config and branch is not None else app
                started = time.process_time()
                for _ in range(requests):
                    await one(target)
                figures[",".join(sorted(config)) or "all"].append(
                    (time.process_time() - started) / requests * 1e6
                )
                await asyncio.sleep(0.15)  # the audit writer drains between rounds
    if statuses != {200}:
        raise SystemExit(f"unexpected statuses {sorted(statuses)}")
    return {name: statistics.median(values) for name, values in figures.items()}


def run_tree(tree: Path, rounds: int, requests: int) -> float:
    """This module run with ``tree``'s tokensmith first on the path; its µs per request."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "bench.ab_token", "--child"]
    command += ["--rounds", str(rounds), "--requests", str(requests)]
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["all"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="the other source tree (A side)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--without", default="", help="comma-separated: sign,audit,middleware")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.child:
        result = uvloop.run(measure([frozenset()], args.rounds, args.requests))
        print(json.dumps(result))
        return
    if args.tree is not None:
        ratios = []
        for pair in range(args.pairs):
            before = run_tree(args.tree.resolve(), args.rounds, args.requests)
            after = run_tree(ROOT, args.rounds, args.requests)
            ratios.append(after / before)
            print(f"pair {pair + 1}: {args.tree} {before:.1f} µs, this tree {after:.1f} µs")
        print(f"this tree / other tree: {statistics.median(ratios):.3f} x the CPU per request")
        return
    parts = [frozenset({part}) for part in args.without.split(",") if part]
    result = uvloop.run(measure([frozenset(), *parts], args.rounds, args.requests))
    base = result["all"]
    for name, value in result.items():
        print(
            f"{name:>12}: {value:6.1f} µs per request"
            + ("" if name == "all" else f" (saves {base - value:.1f})")
        )


if __name__ == "__main__":
    main()
