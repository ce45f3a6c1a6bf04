"""A/B of the FastAPI resource dependency: ``tokensmith.resource.fastapi`` of a git revision
(``--before``, default ``HEAD~1``) against the working tree's, in one process, interleaved.

Three routes (each its own one-route app behind one dict lookup, so that none pays for matching
the others), over ``httpx.ASGITransport`` with the same reused ES256 token: unprotected,
protected by the revision's ``ResourceServer``, protected by the working tree's. ``--raw``: the
ASGI app called directly (no client: the framework and the dependency alone, the harshest
ratio). Each round runs every route for ``--slice`` seconds; the figures are medians over
rounds, and each ratio is the median of the same-round ratios (load that changes during the run
hits all three alike).

    .venv/bin/python -m bench.ab_resource --before HEAD~1 --rounds 15

``--wrk``: the same three routes served by uvicorn (one process, CPU 0) and loaded by wrk
(CPU 1) like the bench's resource scenario, ``--rounds`` interleaved rounds of ``--duration`` s.
"""

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.common import ROOT, Server, free_port, run_wrk
from tokensmith.resource import Principal, ResourceServer
from tokensmith.resource import fastapi as resource_fastapi
from tokensmith.testing import LocalIssuer


def load_before(revision: str) -> Any:
    """``tokensmith.resource.fastapi`` as it was at ``revision`` (a module of the package, so
    its relative imports resolve to today's siblings)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/tokensmith/resource/fastapi.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "fastapi_before.py"
    path.write_text(source)
    name = "tokensmith.resource._fastapi_before"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_app(before: Any, validator: Any, bearer_route: bool = False) -> ASGIApp:
    """``/open``, ``/before`` (the revision's ResourceServer), ``/after`` (today's): each its own
    one-route FastAPI app behind one dict lookup, so that no route pays for the routes matched
    before it (in one app, the third route tried two others first: ~2 µs a request here).
    ``bearer_route``: each protected app's routes are its module's ``BearerRoute``."""
    rs_before = before.ResourceServer(validator)
    rs_after = ResourceServer(validator)

    def one_route(path: str, dependency: Any = None, module: Any = None) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        if bearer_route and module is not None:
            app.router.route_class = module.BearerRoute
        if dependency is None:

            @app.get(path)
            async def open_route() -> dict[str, str]:
                return {"ok": "yes"}

        else:

            @app.get(path)
            async def protected_route(
                principal: Annotated[Principal, dependency],
            ) -> dict[str, str]:
                return {"ok": principal.subject}

        return app

    apps: dict[str, ASGIApp] = {
        "/open": one_route("/open"),
        "/before": one_route("/before", rs_before.require_scopes("docs:read"), before),
        "/after": one_route("/after", rs_after.require_scopes("docs:read"), resource_fastapi),
    }

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await apps[scope["path"]](scope, receive, send)

    return dispatch


_KEPT: list[Any] = []


def wrk_app() -> ASGIApp:
    """The uvicorn factory of ``--wrk``: its own LocalIssuer (serving discovery and the JWKS
    from a thread), the token written to ``AB_TOKEN_FILE``."""
    issuer = LocalIssuer(audience="https://api.bench")
    serving = issuer.serve()
    serving.__enter__()  # for the life of the process (kept referenced: not collected)
    _KEPT.append(serving)
    Path(os.environ["AB_TOKEN_FILE"]).write_text(issuer.token(sub="user", scopes=["docs:read"]))
    validator = issuer.validator(httpx.AsyncClient(timeout=5.0))
    bearer_route = os.environ.get("AB_BEARER_ROUTE") == "1"
    return build_app(load_before(os.environ["AB_BEFORE"]), validator, bearer_route)


def run_wrk_ab(revision: str, rounds: int, duration: float, bearer_route: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        server = Server(
            "ab-resource",
            free_port(),
            [sys.executable, "-m", "uvicorn", "bench.ab_resource:wrk_app", "--factory"],
            env={
                "AB_TOKEN_FILE": str(token_file),
                "AB_BEFORE": revision,
                "AB_BEARER_ROUTE": "1" if bearer_route else "0",
            },
            cwd=str(ROOT),
            health="/open",
        )
        server.command += ["--port", str(server.port), "--no-access-log", "--log-level", "warning"]
        server.start(Path(tmp))
        try:
            auth = f"Bearer {token_file.read_text()}"
            for path in ("/before", "/after"):
                response = httpx.get(server.url + path, headers={"Authorization": auth})
                assert response.is_success, (response.status_code, response.headers, server.tail())
            samples: dict[str, list[float]] = {"/open": [], "/before": [], "/after": []}
            for _ in range(rounds):
                for path, values in samples.items():
                    result = run_wrk(
                        server.url + path,
                        duration=duration,
                        connections=16,
                        method="GET",
                        authorization=auth,
                    )
                    assert result["errors"] == 0, result
                    values.append(result["rps"])
        finally:
            server.stop()
    report(samples)


def report(samples: dict[str, list[float]]) -> dict[str, float]:
    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    result = {f"{path} req/s": statistics.median(v) for path, v in samples.items()}
    result |= {
        "before / open": paired("/before", "/open"),
        "after / open": paired("/after", "/open"),
        "after / before": paired("/after", "/before"),
    }
    for name, value in result.items():
        print(f"{name:16} {value:10,.3f}")
    for path, values in samples.items():
        print(f"{path:16} rounds: {', '.join(f'{v:,.0f}' for v in values)}")
    return result


async def raw_get(app: ASGIApp, path: str, authorization: str) -> int:
    """One ``GET path`` straight into the ASGI app (no client, no transport); its status."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"accept", b"*/*"),
            (b"authorization", authorization.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(
    revision: str, rounds: int, slice_seconds: float, raw: bool, bearer_route: bool = False
) -> dict[str, float]:
    before = load_before(revision)
    issuer = LocalIssuer(audience="https://api.bench")
    with issuer.serve():
        token = issuer.token(sub="user", scopes=["docs:read"])
        async with httpx.AsyncClient() as http:
            validator = issuer.validator(http)
            await validator.validate(token)  # discovery + JWKS, once
            app = build_app(before, validator, bearer_route)
            transport = httpx.ASGITransport(app=app)
            authorization = f"Bearer {token}"
            headers = {"Authorization": authorization}
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:

                async def get(path: str) -> int:
                    if raw:
                        return await raw_get(app, path, authorization)
                    return (await api.get(path, headers=headers)).status_code

                for path in ("/open", "/before", "/after"):
                    assert await get(path) == 200
                samples: dict[str, list[float]] = {"/open": [], "/before": [], "/after": []}
                for _ in range(rounds):
                    for path, values in samples.items():
                        count = 0
                        start = time.perf_counter()
                        while time.perf_counter() - start < slice_seconds:
                            await get(path)
                            count += 1
                        values.append(count / (time.perf_counter() - start))

    return report(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", default="HEAD~1", help="git revision of the A side")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per route per round")
    parser.add_argument("--wrk", action="store_true", help="over HTTP: uvicorn and wrk")
    parser.add_argument(
        "--raw", action="store_true", help="in-process without httpx: the ASGI app called directly"
    )
    parser.add_argument("--duration", type=float, default=3.0, help="--wrk: seconds per run")
    parser.add_argument(
        "--bearer-route",
        action="store_true",
        help="the protected routes on each side's BearerRoute (else FastAPI solves the dependency)",
    )
    args = parser.parse_args()
    if args.wrk:
        run_wrk_ab(args.before, args.rounds, args.duration, args.bearer_route)
    else:
        asyncio.run(run(args.before, args.rounds, args.slice, args.raw, args.bearer_route))


if __name__ == "__main__":
    main()
