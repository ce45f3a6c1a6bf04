from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tokensmith.resource import TokenValidator
from tokensmith.testing import LocalIssuer

from .forge import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(tokensmith_issuer: LocalIssuer, clock: FakeClock) -> LocalIssuer:
    tokensmith_issuer.clock = clock
    return tokensmith_issuer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def validator(issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock) -> TokenValidator:
    return issuer.validator(http, clock=clock)


@pytest.fixture
def claims(issuer: LocalIssuer) -> dict[str, Any]:
    """Valid RFC 9068 claims for the forge; tests break one thing at a time."""
    return issuer.claims(sub="alice", scopes=["docs:read"])


@pytest.fixture
def header(issuer: LocalIssuer) -> dict[str, Any]:
    return {"alg": issuer.current_key.alg, "typ": "at+jwt", "kid": issuer.current_key.kid}
