"""Benchmark: token validation with tokensmith.resource vs PyJWT's raw ``jwt.decode``.

Measures, in-process and on the same ES256 tokens:

* raw ceiling: ``jwt.decode(token, public_key, algorithms=["ES256"], audience=..., issuer=...)``;
* tokensmith, fresh tokens: ``TokenValidator.validate`` with the verified-token cache disabled
  (every call parses, looks the key up, verifies the signature and checks every claim);
* tokensmith, fresh tokens with the cache on (each token seen once: includes the insertion);
* tokensmith, cached: the same token again and again (what a client reusing its token costs);
* a FastAPI route protected by ``ResourceServer`` vs the same route unprotected, over
  ``httpx.ASGITransport`` (no network), with a reused token.

The JWKS is fetched once over real HTTP from a LocalIssuer. Each measurement runs for
``--seconds`` (default 2) and the best of ``--repeat`` (default 3) runs is reported; the whole run
stays well under 60 s. Not run by the tests.

    .venv/bin/python bench/bench_resource.py
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import httpx
import jwt
from fastapi import FastAPI

from tokensmith.resource import Principal, ResourceServer
from tokensmith.testing import LocalIssuer


def measure_sync(fn: Callable[[str], object], tokens: list[str], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for token in tokens:
            fn(token)
        count += len(tokens)
    return count / (time.perf_counter() - start)


async def measure_async(
    fn: Callable[[str], Awaitable[object]], tokens: list[str], seconds: float
) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for token in tokens:
            await fn(token)
        count += len(tokens)
    return count / (time.perf_counter() - start)


def best(runs: list[float]) -> float:
    return max(runs)


async def run(seconds: float, repeat: int, pool: int) -> None:
    issuer = LocalIssuer(audience="https://api.bench")
    with issuer.serve():
        tokens = [issuer.token(sub=f"user{n}", scopes=["docs:read"]) for n in range(pool)]
        public_key = issuer.current_key.private_key.public_key()
        async with httpx.AsyncClient() as http:
            fresh = issuer.validator(http, verified_cache_size=0)
            cached = issuer.validator(http)
            await fresh.validate(tokens[0])  # discovery + JWKS, once
            await cached.validate(tokens[0])

            def raw(token: str) -> object:
                return jwt.decode(
                    token,
                    public_key,
                    algorithms=["ES256"],
                    audience="https://api.bench",
                    issuer=issuer.url,
                )

            results: dict[str, float] = {}
            results["pyjwt raw jwt.decode"] = best(
                [measure_sync(raw, tokens, seconds) for _ in range(repeat)]
            )
            results["tokensmith fresh (no cache)"] = best(
                [await measure_async(fresh.validate, tokens, seconds) for _ in range(repeat)]
            )
            once: list[float] = []
            for _ in range(repeat):
                validator = issuer.validator(http)
                await validator.validate(tokens[0])
                validator.verified_cache.clear()
                start = time.perf_counter()
                for token in tokens:
                    await validator.validate(token)
                once.append(len(tokens) / (time.perf_counter() - start))
            results["tokensmith fresh (cache on, 1st use)"] = best(once)
            results["tokensmith cached (reused token)"] = best(
                [await measure_async(cached.validate, tokens[:1], seconds) for _ in range(repeat)]
            )

            # a protected route vs the same route without protection
            rs = ResourceServer(cached)
            app = FastAPI()

            @app.get("/open")
            async def open_route() -> dict[str, str]:
                return {"ok": "yes"}

            @app.get("/protected")
            async def protected_route(
                principal: Annotated[Principal, rs.require_scopes("docs:read")],
            ) -> dict[str, str]:
                return {"ok": principal.subject}

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
                headers = {"Authorization": f"Bearer {tokens[0]}"}
                assert (await api.get("/protected", headers=headers)).status_code == 200

                async def get_open(_: str) -> object:
                    return await api.get("/open", headers=headers)

                async def get_protected(_: str) -> object:
                    return await api.get("/protected", headers=headers)

                few = tokens[:50]
                results["route unprotected (ASGI)"] = best(
                    [await measure_async(get_open, few, seconds) for _ in range(repeat)]
                )
                results["route protected, reused token (ASGI)"] = best(
                    [await measure_async(get_protected, few, seconds) for _ in range(repeat)]
                )

    base = results["pyjwt raw jwt.decode"]
    route_base = results["route unprotected (ASGI)"]
    print(f"{'measurement':40} {'ops/s':>12} {'ratio':>16}")
    for name, rate in results.items():
        if name.startswith("route"):
            ratio = f"{rate / route_base:6.1%} of open"
        else:
            ratio = f"{rate / base:6.1%} of raw"
        print(f"{name:40} {rate:12,.0f} {ratio:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pool", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.repeat, args.pool))


if __name__ == "__main__":
    main()
