"""Fixtures of the security suite (``/work/shared/security-checklist.md`` as tests).

Everything goes through HTTP: the authorization server in-process behind an ASGI transport (the
``ServerEnv`` harness of ``tests/server``), on SQLite only unless storage atomicity matters (those
items point at the ``server_env`` tests that run on SQLite and PostgreSQL). A resource server
built with ``tokensmith.resource`` validates the authorization server's real tokens through the
same transport. Negative tokens are forged with ``tests/resource/forge.py``.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI

from tests.client.conftest import engine, fake_oidc, make_env  # noqa: F401 (client fixtures)
from tests.server.harness import API, ServerEnv
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.resource import Principal, ResourceServer, TokenValidator
from tokensmith.settings import Settings

RS = "https://rs.test"


@pytest.fixture
def sec_settings(sqlite_url: str) -> Settings:
    return Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]


@pytest.fixture
async def env(sec_settings: Settings, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """The authorization server on a fresh SQLite database."""
    async with ServerEnv.start(sec_settings, clock) as server:
        yield server


def resource_app(env: ServerEnv, http: httpx.AsyncClient, audience: str = API) -> FastAPI:
    """The checklist's ``rs``: ``/api/read`` needs ``docs:read``, ``/api/write`` needs
    ``docs:write``, ``/api/me`` any valid token; tokens validated against the server's JWKS."""
    validator = TokenValidator(
        http=http, issuer=env.settings.issuer, audience=audience, clock=env.clock
    )
    rs = ResourceServer(validator, realm="docs")
    reader = rs.require_scopes("docs:read")
    writer = rs.require_scopes("docs:write")
    app = FastAPI()

    @app.get("/api/read")
    async def read(principal: Annotated[Principal, reader]) -> dict[str, Any]:
        return {"sub": principal.subject, "client": principal.is_client}

    @app.post("/api/write")
    async def write(principal: Annotated[Principal, writer]) -> dict[str, Any]:
        return {"sub": principal.subject}

    @app.get("/api/me")
    async def me(principal: Annotated[Principal, rs.authenticated]) -> dict[str, Any]:
        return {"sub": principal.subject, "client": principal.is_client}

    return app


@pytest.fixture
async def rs(env: ServerEnv) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the resource server (audience: the harness API)."""
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as as_http:
        app = resource_app(env, as_http)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://api.clouddocs.test"
        ) as client:
            yield client
