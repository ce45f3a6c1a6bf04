"""The benchmark code must not rot: each scenario's set-up and request, a few times, in-process
(no wrk, no node, no timing). The benchmarks themselves run with ``make bench``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from bench.common import LUA
from bench.prepare import Browser, code_body, refresh_body
from bench.seed import CC_BODY, seed

from bench import apps, cost_model, report
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
        assert (await http.get("/open")).status_code == 200
        assert (await http.get("/protected")).status_code == 401


async def test_cost_model_counts(tmp_path: Path) -> None:
    rows = await cost_model.measure_backend(
        f"sqlite+aiosqlite:///{tmp_path / 'cost.db'}", None, requests=2
    )
    assert rows["client_credentials JWT"]["signatures"] == 1
    assert rows["authorization_code exchange"]["db statements"] > 0
    assert "| SQLite |" in cost_model.markdown({"SQLite": rows})


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
