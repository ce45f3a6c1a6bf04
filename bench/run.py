"""Run every benchmark scenario and write ``bench/results/`` (JSON and a Markdown table).

    .venv/bin/python -m bench.run            # or: make bench

Servers (tokensmith on SQLite and PostgreSQL, the two ceilings, node-oidc-provider and a resource
server) run side by side on CPU 0, each idle while another is measured; wrk runs on CPU 1. Each
scenario is measured in ``--rounds`` interleaved rounds (A, B, C, A, B, C, ...) of ``--duration``
seconds; a figure is the median of its rounds. Single-use codes and refresh tokens are prepared
through the real endpoints before each round of their scenario (not measured). Loopback only;
every load loop is bounded by wrk's duration. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import cost_model, logins, monitor, node, report, scale
from bench.common import BENCH, PYTHON, ROOT, SERVER_CPU, Server, ensure_wrk, free_port, pinned
from bench.common import run_wrk as wrk
from bench.dot import peer as dot
from bench.prepare import Browser, code_body, refresh_body
from bench.seed import API, CC_BODY, Seeded, seed, seed_login_users, seed_peer_web
from tokensmith.server.runtime import hash_workers

RESULTS = BENCH / "results"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ALGS = {"es256": "ES256", "eddsa": "EdDSA"}
LABELS = {"sqlite": "SQLite", "pg": "PostgreSQL"}
AB_PREFIX = report.AB_PREFIX
"""Names the scenarios served by ``--ab-tree``'s servers: ``AB_PREFIX + <this tree's name>``."""


@dataclass
class Scenario:
    name: str
    group: str
    server: str
    path: str
    method: str = "POST"
    body: str | None = None
    auth: Callable[[], str | None] = lambda: None
    single_use: str | None = None  # "code" or "refresh": bodies prepared before each round
    rounds: list[dict[str, float]] = field(default_factory=list)
    need: int = 0  # single-use items needed per round (from the warm-up rate)
    # the single-use bodies of a round when not the default web client's (n -> bodies)
    prepare_bodies: Callable[[int], list[str]] | None = None
    # a server that takes ~0.3 s a request: as many connections as its threads, at least 10 s,
    # and waited for after wrk stops (its queue would otherwise run into the next measurement)
    slow: bool = False
    # reads the servers' shared-state counters (bench.scale): counted around each wrk run
    counters: Callable[[], dict[str, float]] | None = None


@dataclass
class Database:
    name: str
    url: str
    seeded: Seeded | None = None


BENCH_POOL = 12
"""PostgreSQL connections per tokensmith process of the bench (the product's default is 20)."""


def tokensmith_server(
    name: str,
    db: Database,
    alg: str,
    workdir: Path,
    *,
    tree: Path | None = None,
    workers: int = 1,
    redis_url: str | None = None,
) -> Server:
    """``tokensmith serve`` on ``db``; ``tree``: a source tree whose ``src`` goes first on
    ``PYTHONPATH`` (the other side of an A/B run), else the tree this bench belongs to;
    ``workers`` > 1: ``--workers`` processes, pinned to ``scale.CPUS``; ``redis_url``: with
    Redis."""
    port = free_port()
    env = {
        "PYTHONPATH": str((tree or ROOT) / "src"),
        "TOKENSMITH_ISSUER": f"http://127.0.0.1:{port}",
        "TOKENSMITH_DATABASE_URL": db.url,
        "TOKENSMITH_SIGNING_ALG": alg,
        "TOKENSMITH_AUTHORIZATION_CODE_TTL": "600",
        # INFO: a refused request and each prune of expired rows leave a line (no access log)
        "TOKENSMITH_LOG_LEVEL": "INFO",
        # the per-client limit (default 600/minute) would answer 429 to a load generator
        "TOKENSMITH_TOKEN_RATE_LIMIT": "",
        # Up to six tokensmith processes (and django-oauth-toolkit) share one PostgreSQL, whose
        # default max_connections is 100: sized as an operator would (docs/deployment.md), each
        # keeps at most BENCH_POOL connections, enough for wrk's 16 requests in flight to wait
        # briefly for a connection rather than open new ones.
        "TOKENSMITH_DATABASE_POOL_SIZE": str(BENCH_POOL),
        "TOKENSMITH_DATABASE_MAX_OVERFLOW": "0",
    }
    if redis_url is not None:
        env["TOKENSMITH_REDIS_URL"] = redis_url
    command = [str(Path(PYTHON).parent / "tokensmith"), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return Server(
        name,
        port,
        command,
        env=env,
        cwd=str(workdir),
        health="/.well-known/openid-configuration",
        cpus=scale.CPUS.get(workers, SERVER_CPU),
    )


def uvicorn_server(name: str, factory: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", factory, "--factory", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    return Server(name, port, command, env=env or {}, cwd=str(ROOT))


@contextlib.contextmanager
def postgres_database(admin_url: str | None, prefix: str = "tokensmith") -> Iterator[str | None]:
    """A bench database created for the run and dropped after it (None: no PostgreSQL)."""
    if admin_url is None:
        yield None
        return
    import asyncpg

    name = f"{prefix}_bench_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL unavailable at {admin_url} ({exc}): PostgreSQL scenarios skipped")
        yield None
        return
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def settings_for(url: str) -> Any:
    from tokensmith.settings import Settings

    return Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


async def prepare(
    scenario: Scenario, servers: dict[str, Server], seeded: Seeded, n: int
) -> list[str]:
    async with Browser(servers[scenario.server].url, seeded) as browser:
        await browser.login()
        if scenario.single_use == "code":
            return [code_body(c, v) for c, v in await browser.codes(n)]
        return [refresh_body(t) for t in await browser.refresh_tokens(n)]


def measure(
    scenario: Scenario,
    servers: dict[str, Server],
    seeded: dict[str, Seeded],
    *,
    duration: float,
    connections: int,
    count: bool = True,
) -> dict[str, Any]:
    """One wrk run of ``scenario``; with ``count`` (not for warm-ups), its shared-state
    counters per request too, when it has some."""
    counters = scenario.counters if count else None
    server = servers[scenario.server]
    bodies = None
    if scenario.prepare_bodies is not None:
        bodies = scenario.prepare_bodies(scenario.need)
    elif scenario.single_use:
        db = scenario.server.split("-")[1]
        bodies = asyncio.run(prepare(scenario, servers, seeded[db], scenario.need))
    if counters is not None and bodies is not None:
        time.sleep(scale.SETTLE)  # the preparation's own figures are published first
    before = counters() if counters is not None else None
    cpu_before = server.cpu_seconds()
    result: dict[str, Any] = wrk(
        server.url + scenario.path,
        duration=max(duration, 10.0) if scenario.slow else duration,
        connections=dot.THREADS if scenario.slow else connections,
        method=scenario.method,
        body=scenario.body,
        bodies=bodies,
        authorization=scenario.auth(),
    )
    if scenario.slow:  # answered once the requests wrk left in the queue are done
        httpx.get(server.url + server.health, timeout=120)
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        # the server's own CPU time per answered request: unlike req/s, it does not move when
        # the VM lends the core to someone else (steal) during the run
        result["cpu_us"] = (cpu_after - cpu_before) / result["requests"] * 1e6
    if counters is not None and before is not None and result["requests"]:
        time.sleep(scale.SETTLE)  # until every PostgreSQL backend has published its figures
        result["counts"] = scale.per_request(before, counters(), result["requests"])
    return result


def build_scenarios(
    dbs: dict[str, Database], with_node: bool, node_auth: str, token: Callable[[], str]
) -> list[Scenario]:
    out: list[Scenario] = []
    for key, db in dbs.items():
        s = db.seeded
        assert s is not None
        label = {"sqlite": "SQLite", "pg": "PostgreSQL"}[key]
        out += [
            Scenario(
                f"tokensmith cc JWT ES256 {label}",
                "client_credentials",
                f"ts-{key}-es256",
                "/token",
                body=CC_BODY,
                auth=lambda s=s: s.cc_jwt_auth,
            ),
            Scenario(
                f"tokensmith cc JWT EdDSA {label}",
                "client_credentials",
                f"ts-{key}-eddsa",
                "/token",
                body=CC_BODY,
                auth=lambda s=s: s.cc_jwt_auth,
            ),
            Scenario(
                f"tokensmith cc opaque {label}",
                "client_credentials",
                f"ts-{key}-es256",
                "/token",
                body=CC_BODY,
                auth=lambda s=s: s.cc_opaque_auth,
            ),
            Scenario(
                f"tokensmith code exchange {label}",
                "authorization_code",
                f"ts-{key}-es256",
                "/token",
                auth=lambda s=s: s.web_auth,
                single_use="code",
            ),
            Scenario(
                f"tokensmith refresh rotation {label}",
                "refresh_token",
                f"ts-{key}-es256",
                "/token",
                auth=lambda s=s: s.web_auth,
                single_use="refresh",
            ),
        ]
    out += [
        Scenario("ceiling bare ASGI", "ceiling", "ceiling-asgi", "/token", body=CC_BODY),
        Scenario("ceiling plain FastAPI", "ceiling", "ceiling-fastapi", "/token", body=CC_BODY),
    ]
    if with_node:
        for flavour, resource in node.RESOURCES.items():
            out.append(
                Scenario(
                    f"node-oidc-provider cc {flavour}",
                    "node-oidc-provider",
                    "node",
                    "/token",
                    body=f"{CC_BODY}&resource={resource}",
                    auth=lambda: node_auth,
                )
            )
    bearer = lambda: f"Bearer {token()}"  # noqa: E731
    out += [
        Scenario("route unprotected", "resource", "resource", "/open", "GET", auth=bearer),
        Scenario(
            "route FastAPI floor (trivial dependency)",
            "resource",
            "resource",
            "/floor",
            "GET",
            auth=bearer,
        ),
        Scenario(
            "route protected, FastAPI's resolution (reused token)",
            "resource",
            "resource",
            "/protected-dependency",
            "GET",
            auth=bearer,
        ),
        Scenario(
            "route protected (reused token)",
            "resource",
            "resource",
            "/protected",
            "GET",
            auth=bearer,
        ),
    ]
    return out


def selected(only: str, name: str) -> bool:
    """``--only``: ``name`` contains one of the comma-separated texts (case-insensitive)."""
    return any(part.strip().lower() in name.lower() for part in only.split(",") if part.strip())


def with_ab_twins(scenarios: list[Scenario]) -> list[Scenario]:
    """Each tokensmith scenario followed by its twin on the ``--ab-tree`` server, so that the
    two are measured one after the other in every round."""
    out: list[Scenario] = []
    for s in scenarios:
        out.append(s)
        if s.server.startswith("ts-"):
            out.append(
                replace(
                    s, name=AB_PREFIX + s.name, group="ab-tree", server=f"{s.server}-ab", rounds=[]
                )
            )
    return out


def keep_logs(workdir: Path, to: Path) -> None:
    """The servers' logs (their errors, and what the servers did in the background: pruning)
    kept beside the results: the work directory goes at the end."""
    logs = sorted(workdir.glob("*.log"))
    if logs:
        to.mkdir(parents=True, exist_ok=True)
        for log in logs:
            shutil.copy(log, to / log.name)


def stamp() -> str:
    """The UTC time of a progress line, to line it up with monitor.csv and the servers' logs."""
    return datetime.now(UTC).strftime("%H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds, once per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--only",
        help="run only scenarios whose name contains this text, or one of several separated by "
        "commas (e.g. 'logins': the logins scenario alone; 'cc JWT,ceiling')",
    )
    parser.add_argument(
        "--logins-in-flight", type=int, default=20, help="password logins kept in flight"
    )
    parser.add_argument(
        "--logins-duration",
        type=float,
        default=10.0,
        help="seconds per wrk run of the logins scenario and per raw argon2 loop (a login "
        "takes seconds under load: a short window would count none)",
    )
    parser.add_argument("--no-node", action="store_true", help="skip node-oidc-provider")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--no-dot", action="store_true", help="skip django-oauth-toolkit (needs PostgreSQL)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", POSTGRES_ADMIN),
        help="admin URL of a PostgreSQL server; a bench database is created and dropped",
    )
    parser.add_argument(
        "--ab-tree",
        type=Path,
        help="a second source tree (e.g. a git worktree of an older commit): its tokensmith "
        "servers run beside this tree's on the same databases and every tokensmith scenario "
        f"is measured for both, interleaved ('{AB_PREFIX}<scenario>')",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.ab_tree is not None:
        args.ab_tree = args.ab_tree.resolve()
        if not (args.ab_tree / "src" / "tokensmith").is_dir():
            parser.error(f"--ab-tree {args.ab_tree}: no src/tokensmith in it")
    ensure_wrk()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tokensmith-bench-"))
    servers: dict[str, Server] = {}
    record = monitor.Monitor(workdir, servers, args.out / "monitor.csv")
    record.start()
    try:
        pg_admin = None if args.no_postgres else args.postgres
        dot_admin = pg_admin if want_dot(args) else None
        with (
            postgres_database(pg_admin) as pg_url,
            postgres_database(dot_admin if pg_url else None, prefix="dot") as dot_url,
            scale.private_redis(workdir)
            if want_scale(args)
            else contextlib.nullcontext(None) as redis_url,
        ):
            results = run(args, workdir, servers, pg_url, dot_url, redis_url)
    finally:
        for server in servers.values():
            server.stop()
        record.stop()
        keep_logs(workdir, args.out / "logs")
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"results-{stamp}.json", "latest.json"):
        (args.out / name).write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    (args.out / "latest.md").write_text(markdown)
    with contextlib.suppress(ImportError):
        report.chart(results, args.out / "latest.png")
    print(markdown)
    print(f"written to {args.out}/ (latest.json, latest.md, latest.png)")


def chosen(args: argparse.Namespace, name: str) -> bool:
    """Whether ``--only`` selects the scenario ``name`` (any of its comma-separated texts)."""
    return not args.only or selected(args.only, name)


def want_dot(args: argparse.Namespace) -> bool:
    """Whether django-oauth-toolkit runs: selected, and installed (the ``bench`` extra)."""
    if args.no_dot or not any(chosen(args, n) for n in DOT_NAMES):
        return False
    if not dot.installed():
        print("django-oauth-toolkit is not installed (the bench extra): its scenarios skipped")
        return False
    return True


DOT = "django-oauth-toolkit"
DOT_NAMES = [
    f"{DOT} cc (default hasher: PBKDF2 1,000,000 iterations)",
    f"{DOT} cc",
    f"{DOT} code exchange id_token RS256",
    f"{DOT} code exchange",
    f"{DOT} refresh rotation",
]


def ts_bodies(url: str, seeded: Seeded, kind: str, scope: str) -> Callable[[int], list[str]]:
    """Single-use bodies of tokensmith's web client ``seeded`` asking for ``scope``."""

    async def make(n: int) -> list[str]:
        async with Browser(url, seeded, scope=scope) as browser:
            await browser.login()
            if kind == "code":
                return [code_body(c, v) for c, v in await browser.codes(n)]
            return [refresh_body(t) for t in await browser.refresh_tokens(n)]

    return lambda n: asyncio.run(make(n))


def dot_bodies(url: str, peer: dot.Peer, kind: str, scope: str) -> Callable[[int], list[str]]:
    """Single-use bodies of django-oauth-toolkit's web client, through its own endpoints."""

    async def make(n: int) -> list[str]:
        async with dot.DotBrowser(url, peer) as browser:
            await browser.login()
            if kind == "code":
                return await browser.codes(n, scope)
            return await browser.refresh_tokens(n)

    return lambda n: asyncio.run(make(n))


def peer_scenarios(
    ts: Server, jwt_web: Seeded, opaque_web: Seeded, dot_server: Server | None, peer: Any
) -> list[Scenario]:
    """The like-for-like scenarios of the django-oauth-toolkit comparison (PostgreSQL): ours
    with opaque access tokens (stored, like DOT's) and with JWTs, with and without an id_token
    (RS256 on both sides); DOT's, when it runs."""
    out: list[Scenario] = []
    variants = [
        ("id_token", "openid docs:read", jwt_web),
        ("id_token opaque", "openid docs:read", opaque_web),
        ("opaque", "docs:read", opaque_web),
    ]
    for label, scope, web in variants:
        out.append(
            Scenario(
                f"tokensmith code exchange {label} PostgreSQL",
                "authorization_code",
                ts.name,
                "/token",
                auth=lambda web=web: web.web_auth,
                single_use="code",
                prepare_bodies=ts_bodies(ts.url, web, "code", scope),
            )
        )
    out.append(
        Scenario(
            "tokensmith refresh rotation opaque PostgreSQL",
            "refresh_token",
            ts.name,
            "/token",
            auth=lambda: opaque_web.web_auth,
            single_use="refresh",
            prepare_bodies=ts_bodies(ts.url, opaque_web, "refresh", "docs:read"),
        )
    )
    if dot_server is None:
        return out
    cc_default, cc, code_id, code, refresh = DOT_NAMES
    path = "/o/token/"
    out += [
        Scenario(
            cc_default, DOT, "dot", path, body=dot.CC_BODY, auth=lambda: peer.auth("cc"), slow=True
        ),
        Scenario(cc, DOT, "dot", path, body=dot.CC_BODY, auth=lambda: peer.auth("cc_cheap")),
    ]
    for name, kind, scope in [
        (code_id, "code", "openid read"),
        (code, "code", "read"),
        (refresh, "refresh", "read"),
    ]:
        out.append(
            Scenario(
                name,
                DOT,
                "dot",
                path,
                auth=lambda: peer.auth("web_cheap"),
                single_use=kind,
                prepare_bodies=dot_bodies(dot_server.url, peer, kind, scope),
            )
        )
    return out


SCALE_WORK = ("cc JWT ES256", "code exchange")


def scale_name(work: str, workers: int) -> str:
    return f"scale {work} PostgreSQL+Redis, {workers} process{'es' if workers > 1 else ''}"


def want_scale(args: argparse.Namespace) -> bool:
    """Whether the scale-out scenarios run (they need PostgreSQL, and start a redis-server)."""
    names = [scale_name(w, n) for w in SCALE_WORK for n in scale.WORKERS]
    return not args.no_postgres and any(chosen(args, name) for name in names)


def scale_scenarios(
    db: Database, workdir: Path, servers: dict[str, Server], redis_url: str
) -> list[Scenario]:
    """``client_credentials`` and the code exchange on one ``tokensmith serve`` and on
    ``--workers 2`` (PostgreSQL + Redis), interleaved, with the shared-state counters read
    around each wrk run (``bench/scale.py``)."""
    s = db.seeded
    assert s is not None
    counters = scale.reader(db.url, redis_url)
    for n in scale.WORKERS:
        name = f"scale-pg-{n}"
        servers[name] = tokensmith_server(
            name, db, "ES256", workdir, workers=n, redis_url=redis_url
        )
    out: list[Scenario] = []
    for work in SCALE_WORK:
        for n in scale.WORKERS:
            server = servers[f"scale-pg-{n}"]
            exchange = work == "code exchange"
            out.append(
                Scenario(
                    scale_name(work, n),
                    "scale",
                    server.name,
                    "/token",
                    body=None if exchange else CC_BODY,
                    auth=(lambda: s.web_auth) if exchange else (lambda: s.cc_jwt_auth),
                    single_use="code" if exchange else None,
                    prepare_bodies=(
                        ts_bodies(server.url, s, "code", "docs:read") if exchange else None
                    ),
                    counters=counters,
                )
            )
    return out


def run(
    args: argparse.Namespace,
    workdir: Path,
    servers: dict[str, Server],
    pg_url: str | None,
    dot_url: str | None = None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    dbs: dict[str, Database] = {
        "sqlite": Database("sqlite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
    }
    if pg_url is not None:
        dbs["pg"] = Database("pg", pg_url)
    for db in dbs.values():
        db.seeded = asyncio.run(seed(settings_for(db.url)))
    seeded = {key: db.seeded for key, db in dbs.items() if db.seeded is not None}
    peer_web = None  # the web clients of the peer scenarios (they may ask for openid)
    if pg_url is not None:
        peer_web = tuple(
            asyncio.run(seed_peer_web(settings_for(pg_url), seeded["pg"], token_format))
            for token_format in ("jwt", "opaque")
        )
    for key, db in dbs.items():
        for alg in ("es256", "eddsa"):
            name = f"ts-{key}-{alg}"
            servers[name] = tokensmith_server(name, db, ALGS[alg], workdir)
            if args.ab_tree is not None:
                servers[f"{name}-ab"] = tokensmith_server(
                    f"{name}-ab", db, ALGS[alg], workdir, tree=args.ab_tree
                )
    login_cases = [
        logins.LoginCase(f"logins {LABELS[key]}", f"login-{key}", seeded[key], []) for key in dbs
    ]
    login_cases = [c for c in login_cases if chosen(args, c.name)]
    for case in login_cases:  # its own server: the sessions and hashing touch no other row
        key = case.server.split("-", 1)[1]
        servers[case.server] = tokensmith_server(case.server, dbs[key], "ES256", workdir)
        case.users = asyncio.run(
            seed_login_users(settings_for(dbs[key].url), args.logins_in_flight)
        )
    servers["ceiling-asgi"] = uvicorn_server("ceiling-asgi", "bench.apps:bare_asgi")
    servers["ceiling-fastapi"] = uvicorn_server("ceiling-fastapi", "bench.apps:plain_fastapi")
    issuer = servers["ts-sqlite-es256"]
    servers["resource"] = uvicorn_server(
        "resource", "bench.apps:resource_app", {"BENCH_ISSUER": issuer.url, "BENCH_AUDIENCE": API}
    )
    # node is installed and started only when one of its scenarios is selected
    node_names = [f"node-oidc-provider cc {flavour}".lower() for flavour in node.RESOURCES]
    with_node = not args.no_node and (any(chosen(args, name) for name in node_names))
    if with_node:
        node_dir = node.install()
        if node_dir is None:
            with_node = False
        else:
            servers["node"] = node.server(node_dir)

    sqlite_seeded = seeded["sqlite"]
    token_cache: list[str] = []
    fetched_at = [0.0]

    def resource_token() -> str:
        """A token reused across rounds, renewed well before it expires (600 s)."""
        if not token_cache or time.monotonic() - fetched_at[0] > 300:
            token_cache.clear()
            fetched_at[0] = time.monotonic()
            response = httpx.post(
                issuer.url + "/token",
                content=CC_BODY,
                headers={
                    "Authorization": sqlite_seeded.cc_jwt_auth,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response.raise_for_status()
            token_cache.append(response.json()["access_token"])
        return token_cache[0]

    scenarios = build_scenarios(dbs, with_node, node.AUTH, resource_token)
    peer = None
    if dot_url is not None:  # its own database, migrated and seeded by its own command
        peer = dot.setup(dot_url, workdir)
        servers["dot"] = dot.server(peer)
    if peer_web is not None:
        jwt_web, opaque_web = peer_web
        scenarios += peer_scenarios(
            servers["ts-pg-es256"], jwt_web, opaque_web, servers.get("dot"), peer
        )
    if pg_url is not None and redis_url is not None:
        scenarios += scale_scenarios(dbs["pg"], workdir, servers, redis_url)
    scenarios = [s for s in scenarios if chosen(args, s.name)]
    if args.ab_tree is not None:
        scenarios = with_ab_twins(scenarios)
    # only the servers of the selected scenarios run (the resource server after its issuer)
    needed = {s.server for s in scenarios} | {c.server for c in login_cases}
    if "resource" in needed:
        needed.add(issuer.name)
    for name in [n for n in servers if n in needed and n != "resource"] + ["resource"]:
        if name in needed:
            servers[name].start(workdir)
    common = {"connections": args.connections}
    total = len(scenarios) + len(login_cases)
    print(f"{total} scenarios x {args.rounds} rounds of {args.duration:g} s", flush=True)
    if login_cases:
        print(f"  (logins: {args.logins_duration:g} s per wrk run)", flush=True)
    for scenario in scenarios:  # warm-up; also sizes the single-use files
        scenario.need = 300
        warm = measure(scenario, servers, seeded, duration=args.warmup, count=False, **common)
        # four times the warm-up's rate: a warm-up runs while the server opens its database
        # connections, and was seen at half the rate of the round after it (which then ran
        # out of codes and counted refusals: errors)
        scenario.need = int(warm["rps"] * args.duration * 4) + 300
        print(f"  warm-up {scenario.name}: {warm['rps']:,.0f} req/s", flush=True)
    # a second worker still starting makes its warm-up slow: the scale scenarios' single-use
    # bodies are sized for twice the faster of the two, so that no round runs out of codes
    scaled = [s for s in scenarios if s.group == "scale" and s.single_use]
    for scenario in scaled:
        scenario.need = 2 * max(s.need for s in scaled)
    if any(s.counters is not None for s in scenarios):
        time.sleep(scale.SETTLE)  # the warm-ups' database figures, published before counting
    cost = logins.Cost.of(settings_for(dbs["sqlite"].url))
    # the pool of a server pinned to one CPU (SERVER_CPU): what its runtime sizes it to
    workers = hash_workers(settings_for(dbs["sqlite"].url), cpus=1)
    for case in login_cases:  # warm-up: the token endpoint, and one login per user
        url = servers[case.server].url
        wrk(
            url + "/token",
            duration=args.warmup,
            body=CC_BODY,
            authorization=case.seeded.cc_jwt_auth,
            **common,
        )
        warm_logins = asyncio.run(
            logins.drive(
                url,
                case.seeded,
                case.users,
                in_flight=len(case.users),
                lead=0,
                seconds=60,  # a bound: each slot logs in once (max_logins)
                max_logins=len(case.users),
            )
        )
        print(f"  warm-up {case.name}: {warm_logins['logins_total']} logins", flush=True)
    raw_rounds: list[dict[str, float]] = []
    for round_no in range(1, args.rounds + 1):
        # A/B: every other round runs backwards, so neither tree is always measured first
        backwards = args.ab_tree is not None and round_no % 2 == 0
        for scenario in scenarios[::-1] if backwards else scenarios:
            result = measure(scenario, servers, seeded, duration=args.duration, **common)
            scenario.rounds.append(result)
            if scenario.single_use:
                # load on a shared machine changes: keep twice the fastest rate seen, so that a
                # quicker round does not run out of single-use codes (extra ones stay unused)
                scenario.need = max(scenario.need, int(result["rps"] * args.duration * 2) + 300)
            print(
                f"  {stamp()} round {round_no} {scenario.name}: {result['rps']:,.0f} req/s"
                f" p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms"
                f" errors {result['errors']:.0f}",
                flush=True,
            )
        for case in login_cases:
            measured = logins.measure(
                case,
                servers[case.server].url,
                duration=args.logins_duration,
                in_flight=args.logins_in_flight,
                **common,
            )
            case.rounds.append(measured)
            idle, loaded, done = measured["idle"], measured["loaded"], measured["logins"]
            print(
                f"  {stamp()} round {round_no} {case.name}: cc p99 idle {idle['p99_ms']:.1f} ms,"
                f" under logins {loaded['p99_ms']:.1f} ms ({loaded['rps']:,.0f} req/s);"
                f" {done['logins_per_s']:.1f} logins/s, errors {loaded['errors']:.0f} cc"
                f" / {done['errors']} logins {done['first_errors'][:1]}",
                flush=True,
            )
        if login_cases:
            raw_rounds.append(
                logins.raw_round(cost, workers=workers, duration=args.logins_duration)
            )
            print(f"  round {round_no} raw argon2 verifications/s: {raw_rounds[-1]}", flush=True)
    # gunicorn's master process is not the one serving (its worker is): no figure for DOT
    # nor for the scale servers (their workers serve; one of them runs but one process)
    rss = {
        name: s.rss_mb()
        for name, s in servers.items()
        if name != "dot" and not name.startswith("scale-")
    }
    for server in servers.values():
        server.stop()
    run_resource = not args.only or any(s.group == "resource" for s in scenarios)
    inprocess = resource_inprocess(args.rounds) if run_resource else {}
    costs = {}
    if not args.only:
        print("cost model (in-process, counted) ...", flush=True)
        for key, db in dbs.items():
            label = {"sqlite": "SQLite", "pg": "PostgreSQL"}[key]
            costs[label] = asyncio.run(cost_model.measure_backend(db.url, None, 10, seeded=False))
    if redis_url is not None and pg_url is not None and any(s.group == "scale" for s in scenarios):
        print("cost model, PostgreSQL + Redis (in-process, counted) ...", flush=True)
        costs["PostgreSQL + Redis"] = asyncio.run(
            cost_model.measure_backend(pg_url, redis_url, 10, seeded=False)
        )
    return {
        "meta": meta(args),
        "scenarios": {s.name: summarize(s) for s in scenarios},
        "inprocess": inprocess,
        "rss_mb": {k: round(v, 1) for k, v in rss.items() if v is not None},
        "cost_model": costs,
        **(
            {
                "logins": logins.summarize(
                    login_cases,
                    raw_rounds,
                    in_flight=args.logins_in_flight,
                    workers=workers,
                    cost=cost,
                )
            }
            if login_cases
            else {}
        ),
    }


def summarize(s: Scenario) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in s.rounds), 2)

    return {
        "group": s.group,
        "rps": med("rps"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "errors": int(sum(r["errors"] for r in s.rounds)),
        "requests": int(sum(r["requests"] for r in s.rounds)),
        "rounds_rps": [round(r["rps"], 1) for r in s.rounds],
        **(
            {
                "cpu_us": round(statistics.median(r["cpu_us"] for r in timed), 1),
                "rounds_cpu_us": [round(r["cpu_us"], 1) for r in timed],
            }
            if len(timed := [r for r in s.rounds if "cpu_us" in r]) == len(s.rounds)
            else {}
        ),
        **(
            {
                "counts": {
                    key: round(statistics.median(r["counts"][key] for r in counted), 3)
                    for key in counted[0]["counts"]
                }
            }
            if (counted := [r for r in s.rounds if "counts" in r])
            else {}
        ),
    }


def resource_inprocess(rounds: int) -> dict[str, float]:
    """bench_resource's in-process validation rates (medians of ``rounds``), pinned like a
    server."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "resource.json"
        command = [PYTHON, "-m", "bench.bench_resource", "--slice", "0.5", "--pool", "1000"]
        command += ["--rounds", str(rounds), "--statistic", "median", "--json", str(out)]
        subprocess.run(
            pinned(SERVER_CPU, command),
            cwd=ROOT,
            check=True,
            timeout=300,
            stdout=subprocess.DEVNULL,
        )
        data: dict[str, float] = json.loads(out.read_text())
    return data


def meta(args: argparse.Namespace) -> dict[str, Any]:
    import cryptography
    import fastapi
    import jwt
    import uvicorn

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "versions": {
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
            "pyjwt": jwt.__version__,
            "cryptography": cryptography.__version__,
            "oidc-provider": node.version(),
            "django-oauth-toolkit": dot.version(),
            "node": node.node_version(),
        },
        "rounds": args.rounds,
        "ab_tree": str(args.ab_tree) if args.ab_tree else None,
        "logins_duration_s": args.logins_duration,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # at the end of the run
        "duration_s": args.duration,
        "connections": args.connections,
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
