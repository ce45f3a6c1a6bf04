"""End to end: the CloudDocs documents API with real tokens from the tokensmith pytest plugin.

Tokens are minted by the plugin's LocalIssuer, served over real HTTP, and validated by the API's
production TokenValidator (RFC 8414 discovery, JWKS over HTTP).
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tokensmith.demo.clouddocs.api import CloudDocsApiConfig, create_api
from tokensmith.testing import LocalIssuer

SPA = "https://spa.clouddocs.test"


def config_for(issuer: LocalIssuer, db: Path) -> CloudDocsApiConfig:
    return CloudDocsApiConfig(
        issuer=issuer.url,
        audience=issuer.default_audience,
        database_path=db,
        spa_origin=SPA,
        introspection_client_id=issuer.introspection_client_id,
        introspection_client_secret=issuer.introspection_client_secret,
    )


@pytest.fixture
async def api(tokensmith_issuer: LocalIssuer, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(config_for(tokensmith_issuer, tmp_path / "docs.sqlite3"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


def as_user(issuer: LocalIssuer, sub: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(sub=sub, scopes=scopes, client_id="spa")}


async def test_user_reads_and_writes_own_documents(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient
) -> None:
    alice = as_user(tokensmith_issuer, "alice", "docs:read", "docs:write")
    created = await api.post("/documents", json={"title": "Plan", "body": "v1"}, headers=alice)
    assert created.status_code == 201
    doc = created.json()
    assert doc["owner"] == "alice"
    listed = await api.get("/documents", headers=alice)
    assert [d["id"] for d in listed.json()] == [doc["id"]]
    updated = await api.put(
        f"/documents/{doc['id']}", json={"title": "Plan", "body": "v2"}, headers=alice
    )
    assert updated.json()["body"] == "v2"
    assert (await api.get(f"/documents/{doc['id']}", headers=alice)).json()["body"] == "v2"
    assert (await api.delete(f"/documents/{doc['id']}", headers=alice)).status_code == 204
    assert (await api.get(f"/documents/{doc['id']}", headers=alice)).status_code == 404


async def test_user_cannot_see_other_users_documents(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient
) -> None:
    alice = as_user(tokensmith_issuer, "alice", "docs:read", "docs:write")
    bob = as_user(tokensmith_issuer, "bob", "docs:read", "docs:write")
    doc = (await api.post("/documents", json={"title": "Secret"}, headers=alice)).json()
    assert (await api.get("/documents", headers=bob)).json() == []
    assert (await api.get(f"/documents/{doc['id']}", headers=bob)).status_code == 404
    changed = await api.put(f"/documents/{doc['id']}", json={"title": "Mine"}, headers=bob)
    assert changed.status_code == 404
    assert (await api.delete(f"/documents/{doc['id']}", headers=bob)).status_code == 404
    assert (await api.get(f"/documents/{doc['id']}", headers=alice)).json()["title"] == "Secret"


async def test_read_scope_cannot_write(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient
) -> None:
    reader = as_user(tokensmith_issuer, "alice", "docs:read")
    response = await api.post("/documents", json={"title": "x"}, headers=reader)
    assert response.status_code == 403
    assert 'error="insufficient_scope", scope="docs:write"' in response.headers["www-authenticate"]
    assert (await api.get("/documents", headers=reader)).status_code == 200


async def test_admin_listing_needs_docs_admin(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient
) -> None:
    for user in ("alice", "bob"):
        headers = as_user(tokensmith_issuer, user, "docs:write")
        await api.post("/documents", json={"title": f"{user}'s"}, headers=headers)
    user = as_user(tokensmith_issuer, "alice", "docs:read", "docs:write")
    assert (await api.get("/admin/documents", headers=user)).status_code == 403
    machine_token = tokensmith_issuer.client_token(client_id="reporting", scopes=["docs:admin"])
    response = await api.get(
        "/admin/documents", headers={"Authorization": f"Bearer {machine_token}"}
    )
    assert response.status_code == 200
    assert sorted(d["owner"] for d in response.json()) == ["alice", "bob"]


async def test_opaque_tokens_through_introspection(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient
) -> None:
    token = tokensmith_issuer.opaque_token(sub="carol", scopes=["docs:read", "docs:write"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.post("/documents", json={"title": "c"}, headers=headers)).status_code == 201
    assert len((await api.get("/documents", headers=headers)).json()) == 1


@pytest.mark.parametrize("kind", ["none", "expired", "other-audience", "foreign-key", "query"])
async def test_bad_or_missing_tokens_401(
    tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient, kind: str
) -> None:
    scopes = ["docs:read"]
    token = {
        "none": None,
        "expired": tokensmith_issuer.expired_token(scopes=scopes),
        "other-audience": tokensmith_issuer.token(scopes=scopes, audience="https://other.test"),
        "foreign-key": tokensmith_issuer.foreign_key_token(scopes=scopes),
        "query": None,
    }[kind]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"access_token": tokensmith_issuer.token(scopes=scopes)} if kind == "query" else {}
    response = await api.get("/documents", headers=headers, params=params)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="clouddocs"')


async def test_documents_survive_a_restart(tokensmith_issuer: LocalIssuer, tmp_path: Path) -> None:
    alice = as_user(tokensmith_issuer, "alice", "docs:read", "docs:write")
    for _ in range(2):
        app = create_api(config_for(tokensmith_issuer, tmp_path / "docs.sqlite3"))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
                await api.post("/documents", json={"title": "t"}, headers=alice)
                count = len((await api.get("/documents", headers=alice)).json())
    assert count == 2


async def test_cors_only_for_the_spa_origin(api: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = await api.options("/documents", headers={"Origin": SPA, **preflight})
    assert allowed.headers["access-control-allow-origin"] == SPA
    assert "access-control-allow-credentials" not in allowed.headers
    refused = await api.options("/documents", headers={"Origin": "https://evil.test", **preflight})
    assert "access-control-allow-origin" not in refused.headers


async def test_swagger_ui_uses_pkce(tokensmith_issuer: LocalIssuer, api: httpx.AsyncClient) -> None:
    page = (await api.get("/docs")).text
    assert '"usePkceWithAuthorizationCodeGrant": true' in page
    assert '"clientId": "clouddocs-swagger"' in page
    schema = (await api.get("/openapi.json")).json()
    flow = schema["components"]["securitySchemes"]["OAuth2"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{tokensmith_issuer.url}/authorize"
    assert flow["tokenUrl"] == f"{tokensmith_issuer.url}/token"
    assert set(flow["scopes"]) == {"docs:read", "docs:write", "docs:admin"}
    assert schema["paths"]["/admin/documents"]["get"]["security"] == [{"OAuth2": ["docs:admin"]}]
