"""The benchmark code must not rot: each scenario's set-up and request, a few times, in-process
(no wrk, no node, no timing). The benchmarks themselves run with ``make bench``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.common import LUA, ROOT, Server, process_tree_cpu_seconds
from bench.dot import peer as dot
from bench.prepare import Browser, code_body, refresh_body
from bench.seed import CC_BODY, Seeded, seed, seed_login_users, seed_peer_web

from bench import apps, cost_model, logins, monitor, report, run, scale
from tokensmith.resource import BearerRoute
from tokensmith.server.app import create_app
from tokensmith.settings import Settings

pytestmark = pytest.mark.slow
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_tokensmith_scenarios_in_process(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
        token_rate_limit="",
        authorization_code_ttl=600,
        _env_file=None,  # type: ignore[call-arg]
    )
    seeded = await seed(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=settings.issuer) as http,
            Browser(settings.issuer, seeded, transport) as browser,
        ):
            for auth in (seeded.cc_jwt_auth, seeded.cc_opaque_auth):
                response = await http.post(
                    "/token", content=CC_BODY, headers={**FORM, "Authorization": auth}
                )
                assert response.status_code == 200, response.text
            first = await browser.login()
            codes = [first, *await browser.codes(2, concurrency=2)]
            refresh_tokens = await browser.refresh_tokens(2, concurrency=2)
            bodies = [code_body(c, v) for c, v in codes]
            bodies += [refresh_body(t) for t in refresh_tokens]
            for body in bodies:
                response = await http.post(
                    "/token", content=body, headers={**FORM, "Authorization": seeded.web_auth}
                )
                assert response.status_code == 200, response.text
            # single use: a second exchange of a code is refused
            response = await http.post(
                "/token", content=bodies[0], headers={**FORM, "Authorization": seeded.web_auth}
            )
            assert response.status_code == 400


@pytest.mark.parametrize("factory", [apps.bare_asgi, apps.plain_fastapi])
async def test_ceilings_sign_a_token(factory: object) -> None:
    if factory is apps.plain_fastapi:
        pytest.importorskip("python_multipart", reason="the bench extra (FastAPI Form fields)")
    app = factory()  # type: ignore[operator]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as http:
        response = await http.post("/token", content=CC_BODY, headers=FORM)
    assert response.status_code == 200
    assert response.json()["access_token"].count(".") == 2


async def test_resource_app_routes() -> None:
    app = apps.resource_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as http:
        assert (await http.get("/open")).json() == {"document": "42"}
        assert (await http.get("/floor")).json() == {"document": "42"}
        assert (await http.get("/protected")).status_code == 401
        assert (await http.get("/protected-dependency")).status_code == 401
        assert (await http.get("/other")).status_code == 404
    (route,) = [r for r in app.apps["/protected"].routes if getattr(r, "path", "") == "/protected"]
    assert isinstance(route, BearerRoute)


async def test_cost_model_counts(database_url: str) -> None:
    rows = await cost_model.measure_backend(database_url, None, requests=2)
    assert rows["client_credentials JWT"]["signatures"] == 1
    assert rows["authorization_code exchange"]["db statements"] > 0
    assert rows["authorization_code exchange"]["signatures"] == 1
    # the OpenID variant signs the ID token too, and writes the same rows
    openid = rows["authorization_code exchange, openid (id_token RS256)"]
    assert openid["signatures"] == 2
    assert openid["db statements"] == rows["authorization_code exchange"]["db statements"]
    assert "| SQLite |" in cost_model.markdown({"SQLite": rows})
    # an opaque client-credentials token is the request's only write: on PostgreSQL one
    # statement that commits by itself, no BEGIN and COMMIT around it
    opaque = rows["client_credentials opaque"]
    if database_url.startswith("postgresql"):
        assert opaque["db statements"] == 1, opaque
        assert opaque.get("db transaction control", 0) == 0, opaque


def test_report_and_lua(tmp_path: Path) -> None:
    assert LUA.exists()
    row = {"group": "ceiling", "rps": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    results = {
        "meta": {
            "date": "2026-01-01T00:00:00+00:00",
            "cpu": "cpu",
            "machine": "machine",
            "python": "3.11",
            "rounds": 1,
            "duration_s": 1,
            "connections": 1,
        },
        "scenarios": {report.BARE: row, report.CC_SQLITE: {**row, "group": "client_credentials"}},
        "inprocess": {report.RAW: 10.0, report.FRESH: 9.5},
        "rss_mb": {"ts-sqlite-es256": 100.0},
    }
    text = report.markdown(json.loads(json.dumps(results)))
    assert "| ceiling bare ASGI | 100 |" in text
    assert "validator (fresh tokens)" in text
    # the peer table, when the run measured django-oauth-toolkit (a full run crashed without it)
    peers = {
        name: {**row, "group": "peer"} for row_names in report.PEER_ROWS for name in row_names[1:]
    }
    with_peer = {**results, "scenarios": {**results["scenarios"], **peers}}
    peer_text = report.markdown(json.loads(json.dumps(with_peer)))
    assert "tokensmith vs django-oauth-toolkit" in peer_text
    assert f"| {report.PEER_ROWS[0][0]} | 100 | 100 | 100 | 1.00x | 1.00x | **no** |" in peer_text
    wrk = {"rps": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0, "requests": 100}
    case = logins.LoginCase("logins SQLite", "login-sqlite", object(), ["u"])  # type: ignore[arg-type]
    case.rounds.append(
        {
            "idle": wrk,
            "loaded": {**wrk, "p99_ms": 5.0},
            "logins": {
                "logins_per_s": 2.0,
                "overall_per_s": 1.5,
                "logins_total": 6,
                "errors": 0,
                "drain_s": 1.0,
                "first_errors": [],
            },
        }
    )
    results["logins"] = logins.summarize(
        [case],
        [{"1": 4.0, "4": 5.0}],
        in_flight=20,
        workers=4,
        cost=logins.Cost(3, 65536, 4),
    )
    text = report.markdown(json.loads(json.dumps(results)))
    assert (
        "| SQLite | 100 / 100 | 1.0 / 1.0 | 2.0 / 5.0 | 2.50x | 2.00 / 1.50 | 38% | 30% |" in text
    )
    assert "| cc p99 with 20 logins in flight ≤ 2 x idle p99 (SQLite) | 2.50 x idle | **no** |" in (
        text
    )


def test_report_route_targets_by_rate_and_by_cpu_time() -> None:
    """The protected-route target is judged on req/s in the same rounds; the server's CPU time
    per request (steadier on a busy VM) is shown beside it, and so are FastAPI's own costs."""

    def row(rps: list[float], cpu: list[float]) -> dict[str, Any]:
        return {
            "group": "resource",
            "rps": rps[0],
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "errors": 0,
            "rounds_rps": rps,
            "cpu_us": cpu[0],
            "rounds_cpu_us": cpu,
        }

    results = {
        "scenarios": {
            report.OPEN: row([1000.0, 2000.0, 1000.0], [100.0, 100.0, 100.0]),
            report.PROTECTED: row([950.0, 1700.0, 900.0], [110.0, 105.0, 120.0]),
            report.FLOOR: row([900.0, 1800.0, 900.0], [112.0, 111.0, 110.0]),
            report.PROTECTED_DEPENDENCY: row([800.0, 1600.0, 800.0], [125.0, 125.0, 125.0]),
        }
    }
    rows = {label: (shown, met) for label, shown, met in report.targets(results)}
    assert rows["protected route (reused token) ≥ 90 % of unprotected"] == (
        "0.90 x unprotected",
        True,
    )
    assert rows["(the same, by server CPU time per request)"] == ("0.91 x unprotected", None)
    assert rows["(FastAPI's floor: a dependency that does nothing)"] == (
        "0.90 x unprotected; 0.90 x by CPU time",
        None,
    )
    assert rows["(the same dependency solved by FastAPI, without BearerRoute)"] == (
        "0.80 x unprotected; 0.80 x by CPU time",
        None,
    )


def test_report_judges_the_token_endpoint_on_both_databases() -> None:
    """17.1 asks for its two ratios on SQLite and on PostgreSQL: each gets its row, judged on
    its own rounds (a miss on one database is not hidden by the other)."""

    def row(rps: list[float]) -> dict[str, Any]:
        return {
            "group": "g",
            "rps": rps[0],
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "errors": 0,
            "rounds_rps": rps,
        }

    results = {
        "scenarios": {
            report.BARE: row([1000.0, 1000.0, 1000.0]),
            report.NODE_ES256: row([400.0, 400.0, 400.0]),
            report.CC_SQLITE: row([610.0, 600.0, 650.0]),
            report.CC_PG: row([560.0, 580.0, 700.0]),
        }
    }
    rows = {label: (shown, met) for label, shown, met in report.targets(results)}
    assert rows["cc JWT ES256 SQLite ≥ 60 % of bare ASGI"] == ("0.61 x bare", True)
    assert rows["cc JWT ES256 PostgreSQL ≥ 60 % of bare ASGI"] == ("0.58 x bare", False)
    assert rows["cc JWT ES256 SQLite ≥ 1.5 x node-oidc-provider ES256"] == ("1.52 x node", True)
    assert rows["cc JWT ES256 PostgreSQL ≥ 1.5 x node-oidc-provider ES256"] == (
        "1.45 x node",
        False,
    )


def test_cpu_time_counts_the_process_and_its_children() -> None:
    """The bench's server CPU time: the process's own and its live descendants' (gunicorn's and
    ``serve --workers``' workers)."""
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', {burn!r} + '\\ntime.sleep(30)'])\n"
            "time.sleep(30)",
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        used = 0.0
        while time.monotonic() < deadline:
            used = process_tree_cpu_seconds(parent.pid) or 0.0
            if used >= 0.3:
                break
            time.sleep(0.1)
        assert used >= 0.3  # the parent itself sleeps: the child's burn is what counts
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the child too
        parent.wait()
    assert process_tree_cpu_seconds(parent.pid) is None


def test_monitor_records_databases_and_servers(tmp_path: Path) -> None:
    """monitor.csv: a line per sample with the SQLite file and its write-ahead log, and each
    running server's CPU seconds and memory; a server started later gets its columns then."""
    (tmp_path / "bench.db").write_bytes(b"x" * 2_000_000)
    (tmp_path / "bench.db-wal").write_bytes(b"x" * 500_000)
    servers: dict[str, Server] = {}
    record = monitor.Monitor(tmp_path, servers, tmp_path / "monitor.csv", interval=0.05)
    record.start()
    time.sleep(0.2)
    sleeper = Server("sleeper", 0, [sys.executable, "-c", "import time; time.sleep(30)"])
    sleeper.process = subprocess.Popen(sleeper.command)
    servers["sleeper"] = sleeper
    try:
        deadline = time.monotonic() + 10
        while not any("sleeper cpu s" in row for row in record.rows):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        record.stop()
        sleeper.stop()
    with open(tmp_path / "monitor.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["bench.db MB"] == "2.0"
    assert rows[0]["bench.db-wal MB"] == "0.5"
    assert rows[0]["sleeper cpu s"] == ""  # not started yet
    assert float(rows[-1]["sleeper cpu s"]) >= 0
    assert float(rows[-1]["sleeper MB"]) > 0
    assert all(float(row["load1"]) >= 0 for row in rows)


async def test_logins_scenario_drives_logins_in_process(tmp_path: Path) -> None:
    """The logins driver's form flow (authorize, login page, POST with the CSRF token) logs
    each slot's user in, a few times, with a cheap argon2 cost (no timing)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
        token_rate_limit="",
        password_hash_time_cost=1,
        password_hash_memory_cost=8,
        password_hash_parallelism=1,
        _env_file=None,  # type: ignore[call-arg]
    )
    seeded = await seed(settings)
    users = await seed_login_users(settings, 2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        result = await logins.drive(
            settings.issuer,
            seeded,
            users,
            in_flight=2,
            lead=0,
            seconds=30,
            max_logins=4,
            transport=httpx.ASGITransport(app=app),
        )
    assert result["logins_total"] == 4
    assert result["errors"] == 0, result["first_errors"]


def test_raw_argon2_rate_counts_verifications() -> None:
    cost = logins.Cost(time_cost=1, memory_cost=8, parallelism=1)
    assert logins.raw_rate(cost, threads=2, seconds=0.05, max_verifications=3) > 0


async def test_like_for_like_variants_in_process(tmp_path: Path) -> None:
    """The peer comparison's own variants: a web client with opaque access tokens, and codes
    asked with ``openid`` (their exchange also returns an id_token)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
        token_rate_limit="",
        authorization_code_ttl=600,
        _env_file=None,  # type: ignore[call-arg]
    )
    opaque = await seed_peer_web(settings, await seed(settings), "opaque")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=settings.issuer) as http,
            Browser(settings.issuer, opaque, transport, scope="openid docs:read") as browser,
        ):
            await browser.login()
            codes = await browser.codes(2, concurrency=2)
            for code, verifier in codes:
                response = await http.post(
                    "/token",
                    content=code_body(code, verifier),
                    headers={**FORM, "Authorization": opaque.web_auth},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["id_token"].count(".") == 2
                assert "." not in body["access_token"]  # opaque, stored


def test_peer_scenarios_match_the_report() -> None:
    """Every figure the peer table reads is a scenario ``bench.run`` measures."""
    fake = Seeded("a", "b", "c", "d", "e", "f")
    db = run.Database("pg", "postgresql+asyncpg://u@h/db", fake)
    names = {s.name for s in run.build_scenarios({"pg": db}, False, "", lambda: "t")}
    ts = run.Server("ts-pg-es256", 1, [])
    peer = dot.Peer({}, {})
    names |= {s.name for s in run.peer_scenarios(ts, fake, fake, run.Server("dot", 2, []), peer)}
    for row in report.PEER_ROWS:
        assert set(row[1:]) <= names
    assert report.DOT_DEFAULT_HASHER in names


def test_dot_peer_scenarios(tmp_path: Path) -> None:
    """django-oauth-toolkit's set-up, server and prepared credentials, a few requests of each
    scenario (no wrk, no timing). DOT is part of the bench extra: missing, this test fails."""
    assert dot.installed(), "django-oauth-toolkit and gunicorn (the bench extra) are missing"
    peer = dot.setup(f"sqlite+aiosqlite:///{tmp_path / 'dot.db'}", tmp_path)
    server = dot.server(peer, threads=2)
    server.start(tmp_path)
    try:
        token_url = server.url + "/o/token/"
        for client in ("cc", "cc_cheap"):  # the default hasher, and one iteration
            response = httpx.post(
                token_url, content=dot.CC_BODY, headers={**FORM, "Authorization": peer.auth(client)}
            )
            assert response.status_code == 200, response.text
            assert response.json()["access_token"]
        with_id = run.dot_bodies(server.url, peer, "code", "openid read")(2)
        without = run.dot_bodies(server.url, peer, "code", "read")(2)
        refresh = run.dot_bodies(server.url, peer, "refresh", "read")(2)
        web = {**FORM, "Authorization": peer.auth("web_cheap")}
        for body in with_id + without + refresh:
            response = httpx.post(token_url, content=body, headers=web)
            assert response.status_code == 200, response.text
            assert ("id_token" in response.json()) is (body in with_id)
        # single use: a code, or a rotated refresh token, is refused the second time
        for body in (with_id[0], refresh[0]):
            assert httpx.post(token_url, content=body, headers=web).status_code == 400
    finally:
        server.stop()


def test_ab_tree_twins_each_tokensmith_scenario_and_reports_the_ratio() -> None:
    """``--ab-tree``: each tokensmith scenario is followed by its twin on the other tree's
    server (its own rounds), others are left alone; the report shows the per-round ratio."""
    from bench import run

    cc = run.Scenario(
        "tokensmith cc JWT ES256 SQLite", "client_credentials", "ts-sqlite-es256", "/t"
    )
    bare = run.Scenario("ceiling bare ASGI", "ceiling", "ceiling-asgi", "/token")
    out = run.with_ab_twins([cc, bare])
    assert [(s.name, s.server) for s in out] == [
        (cc.name, "ts-sqlite-es256"),
        (run.AB_PREFIX + cc.name, "ts-sqlite-es256-ab"),
        (bare.name, "ceiling-asgi"),
    ]
    assert out[1].rounds is not cc.rounds
    assert run.selected("cc JWT, ceiling", cc.name)
    assert run.selected("cc JWT, ceiling", bare.name)
    assert not run.selected("code exchange", cc.name)
    row = {"rps": 0, "p50_ms": 1, "p99_ms": 1, "errors": 0, "group": "x"}
    results = {
        "meta": {"ab_tree": "/old"},
        "scenarios": {
            cc.name: {**row, "rps": 300, "rounds_rps": [300, 200, 330]},
            run.AB_PREFIX + cc.name: {**row, "rps": 150, "rounds_rps": [150, 200, 300]},
        },
    }
    table = "\n".join(report.ab_markdown(results))
    assert f"| {cc.name} | 150 | 300 | 1.10x |" in table  # median of 2.0, 1.0, 1.1


def test_scale_scenarios_counts_and_report(tmp_path: Path) -> None:
    """The scale-out scenarios (1 and 2 processes, PostgreSQL + Redis), their per-request
    counters and their table; the servers and wrk run with ``make bench``."""
    db = run.Database("pg", "postgresql+asyncpg://bench@127.0.0.1/bench")
    db.seeded = Seeded("cc", "s1", "op", "s2", "web", "s3")
    servers: dict[str, Any] = {}
    scenarios = run.scale_scenarios(db, tmp_path, servers, "redis://127.0.0.1:1/0")
    assert [s.name for s in scenarios] == [
        run.scale_name(work, n) for work in run.SCALE_WORK for n in scale.WORKERS
    ]
    assert {name: s.cpus for name, s in servers.items()} == {"scale-pg-1": "0", "scale-pg-2": "0,1"}
    assert "--workers" in servers["scale-pg-2"].command
    assert "--workers" not in servers["scale-pg-1"].command
    assert servers["scale-pg-2"].env["TOKENSMITH_REDIS_URL"] == "redis://127.0.0.1:1/0"
    before = {"redis set": 10.0, "pg xact_commit": 5.0, "pg xact_rollback": 0.0}
    after = {"redis set": 30.0, "redis getdel": 20.0, "pg xact_commit": 25.0, "pg xact_rollback": 0}
    counts = scale.per_request(before, after, 10)
    assert counts["redis commands"] == 4.0
    assert counts["pg transactions"] == 2.0
    row = {"group": "scale", "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0, "counts": counts}
    results = {
        "scenarios": {
            run.scale_name("code exchange", 1): {**row, "rps": 100.0},
            run.scale_name("code exchange", 2): {**row, "rps": 150.0},
        }
    }
    text = "\n".join(report.scale_markdown(results))
    assert "| scale code exchange PostgreSQL+Redis, 2 processes | 150 | 1.0 | 2.0 | 0 | 1.50x" in (
        text
    )
    assert "getdel 2" in text


def test_ab_token_measures_each_part_in_process() -> None:
    """``bench.ab_token --without``: the whole request and each part taken out, all answered 200
    (``measure`` exits otherwise), in one short run."""
    command = [sys.executable, "-m", "bench.ab_token", "--without", "sign,audit,middleware"]
    command += ["--rounds", "1", "--requests", "20"]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "µs" in line}
    assert set(lines) == {"all", "sign", "audit", "middleware"}
    assert all("saves" in lines[part] for part in ("sign", "audit", "middleware"))
