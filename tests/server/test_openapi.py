"""``/openapi.json`` describes every authorization-server endpoint (generated from the routes,
``server/schemas.py``), and only those: the login and consent pages and the operations endpoints
stay out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.server.harness import ServerEnv
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.server.app import create_app
from tokensmith.settings import Settings


@pytest.fixture
async def sqlite_env(sqlite_url: str, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """The server on SQLite only: what is tested here does not depend on the database."""
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    async with ServerEnv.start(settings, clock) as env:
        yield env


ENDPOINTS = {
    ("/authorize", "get"),
    ("/authorize", "post"),
    ("/token", "post"),
    ("/token", "get"),
    ("/revoke", "post"),
    ("/introspect", "post"),
    ("/userinfo", "get"),
    ("/userinfo", "post"),
    ("/.well-known/oauth-authorization-server", "get"),
    ("/.well-known/openid-configuration", "get"),
    ("/jwks.json", "get"),
    ("/logout", "get"),
    ("/logout", "post"),
}


async def _document(env: ServerEnv) -> dict[str, Any]:
    response = await env.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_document_lists_every_endpoint(sqlite_env: ServerEnv) -> None:
    document = await _document(sqlite_env)
    assert document["openapi"].startswith("3.1")
    listed = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert listed == ENDPOINTS
    # Every route of the app that serves one of these is in the schema, and nothing else is.
    included = {
        (route.path, method.lower())
        for route in sqlite_env.app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    assert included == ENDPOINTS


async def test_operations_document_status_codes_and_error_schema(sqlite_env: ServerEnv) -> None:
    document = await _document(sqlite_env)
    paths = document["paths"]
    error = {"$ref": "#/components/schemas/OAuthError"}
    for path in ("/token", "/revoke", "/introspect"):
        operation = paths[path]["post"]
        assert {"200", "400", "401", "413", "429", "503"} <= set(operation["responses"])
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == error
        body = operation["requestBody"]["content"]
        assert list(body) == ["application/x-www-form-urlencoded"]
        assert {"clientSecretBasic": []} in operation["security"]
    assert set(paths["/token"]["get"]["responses"]) == {"405"}
    assert "302" in paths["/authorize"]["get"]["responses"]
    assert "303" in paths["/authorize"]["post"]["responses"]
    assert {"401", "403"} <= set(paths["/userinfo"]["get"]["responses"])
    schema = document["components"]["schemas"]["OAuthError"]
    assert schema["required"] == ["error"]
    assert set(schema["properties"]) >= {"error", "error_description"}
    assert document["components"]["securitySchemes"]["clientSecretBasic"]["scheme"] == "basic"


def test_configured_paths_are_described() -> None:
    settings = Settings(issuer="https://as.test", token_path="/oauth/token", jwks_path="/keys")
    paths = create_app(settings).openapi()["paths"]
    assert "/oauth/token" in paths
    assert "/keys" in paths
    assert "/token" not in paths
