"""Every call the toolkit makes to a provider has one deadline and a size cap that hold.

httpx's ``timeout`` limits each read, not the request: a provider dripping a byte every 0.2 s
never trips it. And a body read into memory before its size is checked costs its whole size.
Each call below - discovery, token request (OIDC and GitHub), UserInfo, GitHub's ``GET /user`` -
runs against a real loopback server that drips, or that sends 8 MiB, and must fail with
:class:`ProviderUnavailable` within its deadline, having held at most the cap plus one network
chunk (counted by the transport, not timed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.client.conftest import APP, MakeEnv, assert_error_page
from tests.client.servers import CountingTransport, dripping_server, oversized_server
from tokensmith.client import GitHubProvider, OIDCProvider, ProviderUnavailable
from tokensmith.client.flow import (
    ProviderMetadata,
    exchange_code,
    fetch_github_identity,
    fetch_metadata,
    fetch_userinfo,
    github_metadata,
)
from tokensmith.resource._http import CHUNK_BYTES

CAP = 1024 * 1024
MiB = 1024 * 1024

Call = Callable[[httpx.AsyncClient, str, float], Awaitable[Any]]


def _oidc(url: str, timeout: float) -> OIDCProvider:
    return OIDCProvider(issuer=url, client_id="client", client_secret="secret", timeout=timeout)


def _github(url: str, timeout: float) -> GitHubProvider:
    return GitHubProvider(
        client_id="client", client_secret="secret", base_url=url, api_url=url, timeout=timeout
    )


def _metadata(url: str) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=url,
        authorization_endpoint=f"{url}/authorize",
        token_endpoint=f"{url}/token",
        jwks_uri=f"{url}/jwks",
        userinfo_endpoint=f"{url}/userinfo",
    )


async def _discovery(http: httpx.AsyncClient, url: str, limit: float) -> Any:
    return await fetch_metadata(http, _oidc(url, limit))


async def _oidc_token(http: httpx.AsyncClient, url: str, limit: float) -> Any:
    return await exchange_code(
        http,
        _oidc(url, limit),
        _metadata(url),
        code="code",
        code_verifier="v" * 43,
        redirect_uri=f"{APP}/auth/op/callback",
    )


async def _github_token(http: httpx.AsyncClient, url: str, limit: float) -> Any:
    provider = _github(url, limit)
    return await exchange_code(
        http,
        provider,
        github_metadata(provider),
        code="code",
        code_verifier="v" * 43,
        redirect_uri=f"{APP}/auth/github/callback",
    )


async def _userinfo(http: httpx.AsyncClient, url: str, limit: float) -> Any:
    return await fetch_userinfo(http, _oidc(url, limit), _metadata(url), "access-token")


async def _github_user(http: httpx.AsyncClient, url: str, limit: float) -> Any:
    return await fetch_github_identity(
        http, _github(url, limit), name="github", access_token="gho_x"
    )


CALLS: dict[str, Call] = {
    "discovery": _discovery,
    "oidc-token": _oidc_token,
    "github-token": _github_token,
    "userinfo": _userinfo,
    "github-user": _github_user,
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_dripping_provider_is_cut_off_at_the_deadline(call: str) -> None:
    """A body sent a byte per 0.2 s for 20 s: the 1 s deadline covers the whole call."""
    async with dripping_server(interval=0.2, drips=100) as server:
        async with httpx.AsyncClient() as http:
            with pytest.raises(ProviderUnavailable, match=r"no complete answer within 1 s"):
                # the bound proves "no later than", it does not measure speed
                await asyncio.wait_for(CALLS[call](http, server.url, 1.0), timeout=8.0)
        await asyncio.wait_for(server.disconnected.wait(), timeout=5.0)  # connection dropped
        assert server.bytes_sent < 100


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_an_oversized_answer_is_refused_at_the_cap(call: str, declare_length: bool) -> None:
    """8 MiB against a 1 MiB cap: a declared length is refused before the body is read, an
    undeclared one is read only up to the cap plus one chunk."""
    transport = CountingTransport()
    async with (
        oversized_server(total=8 * MiB, declare_length=declare_length) as server,
        httpx.AsyncClient(transport=transport) as http,
    ):
        with pytest.raises(ProviderUnavailable, match=r"cap"):
            await asyncio.wait_for(CALLS[call](http, server.url, 10.0), timeout=30.0)
    if declare_length:
        assert transport.body_bytes  # one response per location tried
        assert transport.most_read == 0
    else:
        assert 0 < transport.most_read <= CAP + CHUNK_BYTES


async def test_login_with_a_dripping_discovery_fails_with_a_page(make_env: MakeEnv) -> None:
    async with dripping_server(interval=0.2, drips=100) as server:
        provider = OIDCProvider(
            issuer=server.url, client_id="client", client_secret="secret", timeout=1.0
        )
        env = await make_env({"op": provider})
        response = await asyncio.wait_for(env.browser().get(f"{APP}/auth/op/login"), 8.0)
        assert_error_page(response, 502, "ProviderUnavailable")
