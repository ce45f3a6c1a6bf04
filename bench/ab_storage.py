"""A/B of the storage work (issue 17, items 2 and 3): two source trees served side by side.

Both trees' ``tokensmith serve`` run on the same databases (a SQLite file and a PostgreSQL
database made for the run), one at a time on the server CPU, wrk on the other; every scenario is
measured for both trees in each of ``--rounds`` interleaved rounds (the order alternates), and
the median of the rounds is reported. Codes and refresh tokens are prepared through the real
endpoints of the tree being measured before each of its runs (not measured).

    .venv/bin/python -m bench.ab_storage --old ../tokensmith-before [--rounds 4 --duration 3]

The code exchange is measured twice: ``docs:read`` (no ID token) and ``openid docs:read`` (an
ID token signed with RS256, OpenID Connect's default, beside the ES256 access token), so that
what the signature costs is seen apart from what the storage costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Server, ensure_wrk, run_wrk
from bench.cost_model import OpenIdBrowser, with_openid_web
from bench.prepare import Browser, code_body, refresh_body
from bench.run import Database, postgres_database, settings_for, tokensmith_server
from bench.seed import CC_BODY, Seeded, seed


async def seed_all(url: str) -> Seeded:
    settings = settings_for(url)
    return await with_openid_web(settings, await seed(settings))


async def prepare(url: str, seeded: Seeded, kind: str, n: int) -> list[str]:
    """``n`` single-use bodies; a batch that meets a 503 (a busy shared machine: the database's
    connections or the pool ran out) is asked for again, up to 5 times."""
    browser_cls = OpenIdBrowser if kind == "code openid" else Browser
    async with browser_cls(url, seeded) as browser:
        await browser.login()
        bodies: list[str] = []
        attempts = 0
        while len(bodies) < n:
            batch = min(200, n - len(bodies))
            try:
                if kind == "refresh":
                    bodies += [refresh_body(t) for t in await browser.refresh_tokens(batch)]
                else:
                    bodies += [code_body(c, v) for c, v in await browser.codes(batch)]
            except (RuntimeError, httpx.HTTPStatusError) as exc:
                attempts += 1
                if attempts > 5:
                    raise
                print(f"  preparing: {exc}; again", flush=True)
                await asyncio.sleep(1)
        return bodies


SCENARIOS = (
    ("cc JWT ES256", None),
    ("code exchange", "code"),
    ("code exchange + id_token RS256", "code openid"),
    ("refresh rotation", "refresh"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--old", type=Path, required=True, help="the source tree before")
    parser.add_argument("--new", type=Path, default=ROOT, help="the source tree after")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument(
        "--per-second", type=int, default=700, help="codes/refresh tokens prepared per second"
    )
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this folder")
    parser.add_argument("--only", default="", help="scenarios whose name contains this text")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE: also serve the new tree with this TOKENSMITH_ setting",
    )
    args = parser.parse_args()
    ensure_wrk()
    trees = {"before": args.old.resolve(), "after": args.new.resolve()}
    envs: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    for variant in args.variant:
        name, _, setting = variant.partition(":")
        key, _, value = setting.partition("=")
        trees[name] = args.new.resolve()
        envs[name] = {f"TOKENSMITH_{key.upper()}": value}
    scenarios = [s for s in SCENARIOS if args.only.lower() in s[0].lower()]
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tokensmith-ab-") as tmp,
        postgres_database(args.postgres) as pg_url,
    ):
        work = Path(tmp)
        logs = args.logs or work
        logs.mkdir(parents=True, exist_ok=True)
        dbs: dict[str, Database] = {}
        if "sqlite" in args.backends:
            dbs["SQLite"] = Database("sqlite", f"sqlite+aiosqlite:///{work}/ab.db")
        if "pg" in args.backends and pg_url:
            dbs["PostgreSQL"] = Database("pg", pg_url)
        for db in dbs.values():
            db.seeded = asyncio.run(seed_all(db.url))
        servers: dict[tuple[str, str], Server] = {}
        try:
            for label, db in dbs.items():
                for tree, path in trees.items():
                    server = tokensmith_server(f"{db.name}-{tree}", db, "ES256", work)
                    server.env["PYTHONPATH"] = str(path / "src")
                    server.env.update(envs[tree])
                    server.start(logs)
                    servers[(label, tree)] = server
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                order = order[round_ % len(order) :] + order[: round_ % len(order)]
                for label, db in dbs.items():
                    seeded = db.seeded
                    assert seeded is not None
                    for name, kind in scenarios:
                        for tree in order:
                            server = servers[(label, tree)]
                            run: dict[str, Any] = {
                                "duration": args.duration,
                                "connections": args.connections,
                            }
                            if kind is None:
                                run.update(body=CC_BODY, authorization=seeded.cc_jwt_auth)
                            else:
                                need = int(args.per_second * args.duration) + 200
                                bodies = asyncio.run(prepare(server.url, seeded, kind, need))
                                run.update(bodies=bodies, authorization=seeded.web_auth)
                            result = run_wrk(server.url + "/token", **run)
                            results.setdefault((label, name, tree), []).append(result)
                            print(
                                f"round {round_ + 1} {label} {name} {tree}: "
                                f"{result['rps']:,.0f} req/s, errors {result['errors']:g}",
                                flush=True,
                            )
        finally:
            for server in servers.values():
                server.stop()
    print()
    others = [t for t in trees if t != "before"]
    print(
        "| backend | scenario | before req/s (rounds) | "
        + " | ".join(f"{t} req/s (rounds) | {t}/before" for t in others)
        + " |"
    )
    print("| --- | --- | ---: |" + " ---: | ---: |" * len(others))
    for label in dbs:
        for name, _ in scenarios:
            before = [r["rps"] for r in results[(label, name, "before")]]
            b = statistics.median(before)
            cells = [f"{b:,.0f} ({' / '.join(f'{x:,.0f}' for x in before)})"]
            for tree in others:
                rounds = [r["rps"] for r in results[(label, name, tree)]]
                a = statistics.median(rounds)
                cells.append(f"{a:,.0f} ({' / '.join(f'{x:,.0f}' for x in rounds)})")
                cells.append(f"{a / b:.2f}")
            print(f"| {label} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
