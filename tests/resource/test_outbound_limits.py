"""The resource toolkit's outbound calls - JWKS, discovery, introspection - have one deadline for
the whole call and a size cap that holds while reading.

Each runs against a real loopback server that drips its body a byte every 0.2 s (each read is
quick, so httpx's per-read timeout never trips) or that sends 8 MiB, and must fail with
:class:`IssuerUnavailableError` within its deadline, having held at most the cap plus one network
chunk (counted by the transport, not timed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.client.servers import CountingTransport, dripping_server, oversized_server
from tokensmith.resource import IntrospectionValidator, IssuerUnavailableError, JWKSCache, discover
from tokensmith.resource._http import CHUNK_BYTES
from tokensmith.resource.discovery import MAX_METADATA_BYTES
from tokensmith.resource.introspection import MAX_RESPONSE_BYTES
from tokensmith.resource.jwks import MAX_JWKS_BYTES

MiB = 1024 * 1024

Call = Callable[[httpx.AsyncClient, str, float], Awaitable[Any]]


async def _jwks(http: httpx.AsyncClient, url: str, deadline: float) -> Any:
    return await JWKSCache(http, f"{url}/jwks", timeout=deadline).get_key("k1", "ES256")


async def _discovery(http: httpx.AsyncClient, url: str, deadline: float) -> Any:
    return await discover(http, url, deadline=deadline)


async def _introspection(http: httpx.AsyncClient, url: str, deadline: float) -> Any:
    validator = IntrospectionValidator(
        http=http,
        client_id="rs",
        client_secret="secret",
        introspection_endpoint=f"{url}/introspect",
        timeout=deadline,
    )
    return await validator.validate("opaque-token")


CALLS: dict[str, tuple[Call, int]] = {
    "jwks": (_jwks, MAX_JWKS_BYTES),
    "discovery": (_discovery, MAX_METADATA_BYTES),
    "introspection": (_introspection, MAX_RESPONSE_BYTES),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_dripping_issuer_is_cut_off_at_the_deadline(call: str) -> None:
    async with dripping_server(interval=0.2, drips=100) as server:
        async with httpx.AsyncClient() as http:
            with pytest.raises(IssuerUnavailableError, match=r"no complete answer within|deadline"):
                # the bound proves "no later than", it does not measure speed
                await asyncio.wait_for(CALLS[call][0](http, server.url, 1.0), timeout=8.0)
        await asyncio.wait_for(server.disconnected.wait(), timeout=5.0)  # connection dropped
        assert server.bytes_sent < 100


async def test_discovery_deadline_covers_every_location_tried() -> None:
    """Three metadata locations, one deadline: not three times the deadline."""
    async with dripping_server(interval=0.2, drips=100) as server, httpx.AsyncClient() as http:
        with pytest.raises(IssuerUnavailableError) as caught:
            await asyncio.wait_for(discover(http, server.url, deadline=1.0), timeout=2.5)
    assert server.requests == 1
    assert "deadline passed" in caught.value.detail


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_an_oversized_answer_is_refused_at_the_cap(call: str, declare_length: bool) -> None:
    function, cap = CALLS[call]
    transport = CountingTransport()
    async with (
        oversized_server(total=8 * MiB, declare_length=declare_length) as server,
        httpx.AsyncClient(transport=transport) as http,
    ):
        with pytest.raises(IssuerUnavailableError, match=r"cap"):
            await asyncio.wait_for(function(http, server.url, 10.0), timeout=30.0)
    if declare_length:
        assert transport.body_bytes  # one response per location tried
        assert transport.most_read == 0
    else:
        assert 0 < transport.most_read <= cap + CHUNK_BYTES
