"""Tests of an app built per test by a factory: async tests, run by anyio's pytest plugin."""

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI

from tokensmith.resource import Principal, ResourceServer, TokenValidator
from tokensmith.testing import LocalIssuer

pytestmark = pytest.mark.anyio  # anyio (a dependency of httpx) ships the plugin: no set-up


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # tokensmith.resource runs on asyncio (not trio, if that is installed)


def make_api(issuer: str, audience: str, http: httpx.AsyncClient) -> FastAPI:
    rs = ResourceServer(TokenValidator(http=http, issuer=issuer, audience=audience))
    app = FastAPI()

    @app.get("/reports")
    async def reports(principal: Annotated[Principal, rs.require_scopes("reports:read")]) -> dict:
        return {"for": principal.subject}

    return app


async def test_reports_need_a_valid_token_with_scope(tokensmith_issuer: LocalIssuer) -> None:
    async with httpx.AsyncClient() as http:
        app = make_api(tokensmith_issuer.url, tokensmith_issuer.default_audience, http)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:

            async def get(token: str) -> httpx.Response:
                return await api.get("/reports", headers={"Authorization": f"Bearer {token}"})

            ok = await get(tokensmith_issuer.token(sub="alice", scopes=["reports:read"]))
            assert ok.json() == {"for": "alice"}
            assert (await get(tokensmith_issuer.token(scopes=[]))).status_code == 403
            assert (await get(tokensmith_issuer.expired_token())).status_code == 401
            assert (await get(tokensmith_issuer.token(audience="other"))).status_code == 401
            assert (await get(tokensmith_issuer.foreign_key_token())).status_code == 401
