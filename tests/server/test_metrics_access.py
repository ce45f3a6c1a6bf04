"""Who may read ``/metrics`` (round two, operational defaults): a direct connection from
``metrics_allow_ips`` (loopback by default) or a request with the ``metrics_token`` bearer token;
everyone else gets the 404 of a path that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.server.harness import ServerEnv
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

TOKEN = "m" * 20 + "0123456789abcdef"
OUTSIDER = "203.0.113.7"


def make_settings(sqlite_url: str, **overrides: Any) -> Settings:
    return Settings(issuer=ISSUER, database_url=sqlite_url, **{**FAST_HASH, **overrides})


@asynccontextmanager
async def metrics_server(
    sqlite_url: str, clock: FakeClock, **overrides: Any
) -> AsyncIterator[ServerEnv]:
    async with ServerEnv.start(make_settings(sqlite_url, **overrides), clock) as env:
        yield env


async def get_metrics(
    app: ASGIApp, *, client: tuple[str, int], headers: dict[str, str] | None = None
) -> httpx.Response:
    """``GET /metrics`` as seen from the peer address ``client``."""
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        return await http.get("/metrics", headers=headers)


def assert_hidden(response: httpx.Response, unknown: httpx.Response) -> None:
    """Refused exactly like a path that does not exist, and no counter in the body."""
    assert response.status_code == 404
    assert response.json() == unknown.json()
    assert "tokensmith_" not in response.text
    assert "www-authenticate" not in response.headers


async def unknown_path(env: ServerEnv) -> httpx.Response:
    response = await env.http.get("/no-such-path")
    assert response.status_code == 404
    return response


async def test_metrics_are_served_to_loopback_by_default(sqlite_url: str, clock: FakeClock) -> None:
    async with metrics_server(sqlite_url, clock) as env:
        for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            response = await get_metrics(env.app, client=(address, 50000))
            assert response.status_code == 200, address
            assert "tokensmith_http_requests_total" in response.text
            assert response.headers["cache-control"] == "no-store"


async def test_metrics_are_hidden_from_other_addresses_by_default(
    sqlite_url: str, clock: FakeClock
) -> None:
    async with metrics_server(sqlite_url, clock) as env:
        unknown = await unknown_path(env)
        for address in (OUTSIDER, "10.0.0.5", "2001:db8::1", "::ffff:203.0.113.7", "testclient"):
            assert_hidden(await get_metrics(env.app, client=(address, 50000)), unknown)


async def test_relayed_requests_are_not_let_in_by_the_proxy_address(
    sqlite_url: str, clock: FakeClock
) -> None:
    """A reverse proxy on the same host connects from loopback: what it relays is not."""
    async with metrics_server(sqlite_url, clock) as env:
        unknown = await unknown_path(env)
        for header in (
            {"X-Forwarded-For": "127.0.0.1"},
            {"Forwarded": "for=127.0.0.1"},
            {"X-Real-IP": "127.0.0.1"},
        ):
            response = await get_metrics(env.app, client=("127.0.0.1", 50000), headers=header)
            assert_hidden(response, unknown)


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    sqlite_url: str, clock: FakeClock
) -> None:
    """Behind uvicorn's proxy handling (``forwarded_allow_ips``, as ``tokensmith serve`` sets it
    up): an untrusted peer claiming loopback in X-Forwarded-For stays an outsider, and a
    request relayed by the trusted proxy is refused too."""
    async with metrics_server(sqlite_url, clock, forwarded_allow_ips="10.0.0.2") as env:
        unknown = await unknown_path(env)
        proxied = ProxyHeadersMiddleware(env.app, trusted_hosts="10.0.0.2")
        spoofed = {"X-Forwarded-For": "127.0.0.1"}
        for peer in (OUTSIDER, "10.0.0.2"):
            response = await get_metrics(proxied, client=(peer, 50000), headers=spoofed)
            assert_hidden(response, unknown)
        direct = await get_metrics(proxied, client=("127.0.0.1", 50000))
        assert direct.status_code == 200


async def test_metrics_token_opens_metrics_from_any_address(
    sqlite_url: str, clock: FakeClock
) -> None:
    async with metrics_server(sqlite_url, clock, metrics_token=TOKEN) as env:
        unknown = await unknown_path(env)
        good = await get_metrics(
            env.app, client=(OUTSIDER, 50000), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert good.status_code == 200
        assert "tokensmith_http_requests_total" in good.text
        lower = await get_metrics(
            env.app, client=(OUTSIDER, 50000), headers={"Authorization": f"bearer {TOKEN}"}
        )
        assert lower.status_code == 200  # RFC 9110 §11.1: the scheme is case-insensitive
        for value in (
            f"Bearer {TOKEN[:-1]}x",  # same length, one character off
            f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN}x",
            f"Basic {TOKEN}",
            "Bearer ",
            TOKEN,
        ):
            response = await get_metrics(
                env.app, client=(OUTSIDER, 50000), headers={"Authorization": value}
            )
            assert_hidden(response, unknown)
        assert_hidden(await get_metrics(env.app, client=(OUTSIDER, 50000)), unknown)


async def test_metrics_allow_ips_replaces_loopback(sqlite_url: str, clock: FakeClock) -> None:
    async with metrics_server(
        sqlite_url, clock, metrics_allow_ips="10.0.0.0/8, 2001:db8::/32"
    ) as env:
        unknown = await unknown_path(env)
        for address in ("10.1.2.3", "2001:db8::7"):
            assert (await get_metrics(env.app, client=(address, 1))).status_code == 200
        for address in ("127.0.0.1", "::1", "11.0.0.1"):
            assert_hidden(await get_metrics(env.app, client=(address, 1)), unknown)


async def test_empty_allow_list_and_no_token_hides_metrics_from_everyone(
    sqlite_url: str, clock: FakeClock
) -> None:
    async with metrics_server(sqlite_url, clock, metrics_allow_ips="") as env:
        unknown = await unknown_path(env)
        assert_hidden(await get_metrics(env.app, client=("127.0.0.1", 1)), unknown)


async def test_metrics_disabled_is_an_unknown_path(sqlite_url: str, clock: FakeClock) -> None:
    async with metrics_server(sqlite_url, clock, metrics_enabled=False) as env:
        unknown = await unknown_path(env)
        assert_hidden(await get_metrics(env.app, client=("127.0.0.1", 1)), unknown)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"metrics_allow_ips": "localhost"}, "not an IP address"),
        ({"metrics_allow_ips": "10.0.0.0/33"}, "not an IP address"),
        ({"metrics_allow_ips": "*"}, "0.0.0.0/0"),
        ({"metrics_token": "short"}, "at least 32"),
    ],
)
def test_bad_metrics_settings_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Settings(**overrides)


def test_metrics_token_is_hidden_from_repr() -> None:
    settings = Settings(metrics_token=TOKEN)  # type: ignore[arg-type]
    assert TOKEN not in repr(settings)
    from tokensmith.server.observability import MetricsAccess

    assert TOKEN not in repr(MetricsAccess.from_settings(settings))
