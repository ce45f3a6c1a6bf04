"""Benchmark: token validation with tokensmith.resource vs PyJWT's raw ``jwt.decode``.

Measures, in-process and on the same ES256 tokens:

* raw ceiling: ``jwt.decode(token, public_key, algorithms=["ES256"], audience=..., issuer=...)``;
* tokensmith, fresh tokens: ``TokenValidator.validate`` with the verified-token cache disabled
  (every call parses, looks the key up, verifies the signature and checks every claim);
* tokensmith, fresh tokens with the cache on (each token seen for the first time: includes the
  insertion into the cache);
* tokensmith, cached: the same token again and again (what a client reusing its token costs);
* a FastAPI route protected by ``ResourceServer`` on a ``BearerRoute``, the same through FastAPI's
  dependency resolution, and the same route unprotected, over ``httpx.ASGITransport`` (no
  network), with a reused token.

The JWKS is fetched once over real HTTP from a LocalIssuer. The measurements are interleaved:
``--rounds`` rounds, each running every measurement for ``--slice`` seconds, and the best slice of
each is reported (``--statistic median``: the median slice), so background load on a shared
machine hits all of them alike. The default run takes about 30 s. ``--json PATH`` also writes the
rates (``bench.run`` uses it). Not run by the tests.

    .venv/bin/python bench/bench_resource.py
"""

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import jwt
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from tokensmith.resource import BearerRoute, Principal, ResourceServer
from tokensmith.testing import LocalIssuer

Step = Callable[[str], Awaitable[object]]


async def rate(
    step: Step, tokens: list[str], seconds: float, before_pass: Callable[[], None] | None
) -> float:
    """Calls per second of ``step`` over ``tokens`` (cycled) for about ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        if before_pass is not None:
            before_pass()
        for token in tokens:
            await step(token)
        count += len(tokens)
    return count / (time.perf_counter() - start)


async def run(
    slice_seconds: float,
    rounds: int,
    pool: int,
    *,
    statistic: Callable[[list[float]], float] = max,
    out: str | None = None,
) -> dict[str, float]:
    issuer = LocalIssuer(audience="https://api.bench")
    with issuer.serve():
        tokens = [issuer.token(sub=f"user{n}", scopes=["docs:read"]) for n in range(pool)]
        public_key = issuer.current_key.private_key.public_key()
        async with httpx.AsyncClient() as http:
            fresh = issuer.validator(http, verified_cache_size=0)
            first_use = issuer.validator(http, verified_cache_size=2 * pool)
            cached = issuer.validator(http)
            for validator in (fresh, first_use, cached):
                await validator.validate(tokens[0])  # discovery + JWKS, once

            async def raw(token: str) -> object:
                # the coroutine wrapper costs the raw side the same as the validator's ``await``
                return jwt.decode(
                    token,
                    public_key,
                    algorithms=["ES256"],
                    audience="https://api.bench",
                    issuer=issuer.url,
                )

            rs = ResourceServer(cached)
            Reader = Annotated[Principal, rs.require_scopes("docs:read")]
            open_app, solved_app, bearer_app = FastAPI(), FastAPI(), FastAPI()
            bearer_app.router.route_class = BearerRoute

            @open_app.get("/open")
            async def open_route() -> dict[str, str]:
                return {"ok": "yes"}

            @solved_app.get("/protected-dependency")
            async def solved_route(principal: Reader) -> dict[str, str]:
                return {"ok": principal.subject}

            @bearer_app.get("/protected")
            async def protected_route(principal: Reader) -> dict[str, str]:
                return {"ok": principal.subject}

            by_path = {
                "/open": open_app,
                "/protected-dependency": solved_app,
                "/protected": bearer_app,
            }

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                # each route its own app: none pays for matching the others
                await by_path[scope["path"]](scope, receive, send)

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
                headers = {"Authorization": f"Bearer {tokens[0]}"}
                assert (await api.get("/protected", headers=headers)).status_code == 200

                async def get_open(_: str) -> object:
                    return await api.get("/open", headers=headers)

                async def get_protected(_: str) -> object:
                    return await api.get("/protected", headers=headers)

                async def get_solved(_: str) -> object:
                    return await api.get("/protected-dependency", headers=headers)

                cases: list[tuple[str, Step, list[str], Callable[[], None] | None]] = [
                    ("pyjwt raw jwt.decode", raw, tokens, None),
                    ("tokensmith fresh (no cache)", fresh.validate, tokens, None),
                    (
                        "tokensmith fresh (cache on, 1st use)",
                        first_use.validate,
                        tokens,
                        first_use.verified_cache.clear,
                    ),
                    ("tokensmith cached (reused token)", cached.validate, tokens[:1], None),
                    ("route unprotected (ASGI)", get_open, tokens[:20], None),
                    ("route protected, reused token (ASGI)", get_protected, tokens[:20], None),
                    (
                        "route protected, FastAPI's resolution, reused token (ASGI)",
                        get_solved,
                        tokens[:20],
                        None,
                    ),
                ]
                samples: dict[str, list[float]] = {name: [] for name, *_ in cases}
                for _ in range(rounds):
                    for name, step, inputs, before_pass in cases:
                        measured = await rate(step, inputs, slice_seconds, before_pass)
                        samples[name].append(measured)
                results = {name: statistic(values) for name, values in samples.items()}

    base = results["pyjwt raw jwt.decode"]
    route_base = results["route unprotected (ASGI)"]
    print(f"{'measurement':40} {'ops/s':>12} {'ratio':>16}")
    for name, value in results.items():
        if name.startswith("route"):
            ratio = f"{value / route_base:6.1%} of open"
        else:
            ratio = f"{value / base:6.1%} of raw"
        print(f"{name:40} {value:12,.0f} {ratio:>16}")
    if out:
        Path(out).write_text(json.dumps(results, indent=2))  # noqa: ASYNC240
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per measurement slice")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pool", type=int, default=1000, help="distinct tokens")
    parser.add_argument("--statistic", choices=("best", "median"), default="best")
    parser.add_argument("--json", help="also write the rates to this JSON file")
    args = parser.parse_args()
    statistic = max if args.statistic == "best" else statistics.median
    asyncio.run(run(args.slice, args.rounds, args.pool, statistic=statistic, out=args.json))


if __name__ == "__main__":
    main()
