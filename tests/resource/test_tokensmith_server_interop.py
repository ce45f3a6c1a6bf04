"""Interop: tokens issued by the tokensmith authorization server pass tokensmith.resource.

The authorization server runs in-process (its own test harness, real SQLite database); the
validators reach its metadata, JWKS and introspection endpoints through an ASGI transport.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tokensmith.core.clock import FakeClock
from tokensmith.resource import (
    IntrospectionValidator,
    InvalidTokenError,
    TokenValidator,
)


@pytest.fixture
def clock() -> FakeClock:
    """The server harness's own clock type (tests/resource/conftest.py has a different one)."""
    return FakeClock(float(int(time.time())))


@pytest.fixture
async def as_http(server_env: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=server_env.transport, base_url=server_env.settings.issuer
    ) as client:
        yield client


def resource_validator(server_env: Any, http: httpx.AsyncClient) -> TokenValidator:
    from tests.server.harness import API

    return TokenValidator(
        http=http, issuer=server_env.settings.issuer, audience=API, clock=server_env.clock
    )


async def test_client_credentials_token_validates(
    server_env: Any, as_http: httpx.AsyncClient
) -> None:
    client = await server_env.client(
        grant_types=["client_credentials"], redirect_uris=[], scopes=["docs:read"]
    )
    response = await server_env.token(
        client, {"grant_type": "client_credentials", "scope": "docs:read"}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    principal = await resource_validator(server_env, as_http).validate(token)
    assert principal.is_client
    assert principal.subject == client.client.client_id
    assert principal.scopes == frozenset({"docs:read"})


async def test_authorization_code_token_validates_and_expires(
    server_env: Any, as_http: httpx.AsyncClient
) -> None:
    client = await server_env.client()
    user = await server_env.user("alice")
    flow = await server_env.authorize(server_env.browser(), client, scope="docs:read")
    response = await server_env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    validator = resource_validator(server_env, as_http)
    principal = await validator.validate(body["access_token"])
    assert not principal.is_client
    assert principal.client_id == client.client.client_id
    assert principal.subject == user.id
    server_env.clock.advance(body["expires_in"] + 31)
    with pytest.raises(InvalidTokenError, match="expired"):
        await validator.validate(body["access_token"])


async def test_introspection_against_the_server(
    server_env: Any, as_http: httpx.AsyncClient
) -> None:
    from tests.server.harness import API

    rs_client = await server_env.client(
        name="CloudDocs API (introspection)",
        grant_types=["client_credentials"],
        redirect_uris=[],
        can_introspect=True,
    )
    worker = await server_env.client(
        grant_types=["client_credentials"], redirect_uris=[], scopes=["docs:read"]
    )
    token = (
        await server_env.token(worker, {"grant_type": "client_credentials", "scope": "docs:read"})
    ).json()["access_token"]
    introspection = IntrospectionValidator(
        http=as_http,
        issuer=server_env.settings.issuer,
        audience=API,
        client_id=rs_client.client.client_id,
        client_secret=rs_client.client_secret,
        clock=server_env.clock,
    )
    principal = await introspection.validate(token)
    assert principal.subject == worker.client.client_id
    assert principal.token_type == "opaque"
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate("ts_at_not-a-real-token")

    from tests.server.harness import basic

    revoked = await as_http.post(
        server_env.settings.revoke_path,
        data={"token": token},
        headers={"Authorization": basic(worker.client.client_id, worker.client_secret)},
    )
    assert revoked.status_code == 200
    await introspection.validate(token)  # cached answer, at most cache_ttl (60 s)
    server_env.clock.advance(60)
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate(token)
