"""``/openapi.json`` describes every authorization-server endpoint (generated from the routes,
``server/schemas.py``), and only those: the login and consent pages and the operations endpoints
stay out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from tests.server.harness import ServerEnv
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.admin_access import ADMIN_SCOPES
from tokensmith.core.clock import FakeClock
from tokensmith.server.app import create_app
from tokensmith.server.schemas import DescribedRoute, described_routes
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
# The admin API (server/routes/admin.py): each operation once, with its security requirement.
ADMIN_ENDPOINTS = {
    ("/admin/v1/apis", "get"),
    ("/admin/v1/apis", "post"),
    ("/admin/v1/apis/{identifier}", "get"),
    ("/admin/v1/apis/{identifier}", "delete"),
    ("/admin/v1/clients", "get"),
    ("/admin/v1/clients", "post"),
    ("/admin/v1/clients/{client_id}", "get"),
    ("/admin/v1/clients/{client_id}", "patch"),
    ("/admin/v1/clients/{client_id}", "delete"),
    ("/admin/v1/clients/{client_id}/secret", "post"),
    ("/admin/v1/users", "get"),
    ("/admin/v1/users", "post"),
    ("/admin/v1/users/{user}", "get"),
    ("/admin/v1/users/{user}", "patch"),
    ("/admin/v1/users/{user}", "delete"),
    ("/admin/v1/users/{user}/disable", "post"),
    ("/admin/v1/users/{user}/enable", "post"),
    ("/admin/v1/users/{user}/password", "post"),
    ("/admin/v1/invitations", "post"),
    ("/admin/v1/invitations", "get"),
    ("/admin/v1/invitations/{email}", "delete"),
    ("/admin/v1/users/{user}/grants", "get"),
    ("/admin/v1/users/{user}/grants", "delete"),
    ("/admin/v1/users/{user}/grants/{grant_id}", "delete"),
    ("/admin/v1/users/{user}/sessions", "get"),
    ("/admin/v1/users/{user}/sessions", "delete"),
    ("/admin/v1/users/{user}/sessions/{session_id}", "delete"),
    ("/admin/v1/keys", "get"),
    ("/admin/v1/keys/rotate", "post"),
    ("/admin/v1/keys/prune", "post"),
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
    assert listed == ENDPOINTS | ADMIN_ENDPOINTS
    # Every route of the app that serves one of these is in the schema, and nothing else is.
    included = {
        (getattr(route, "path_format", route.path), method.lower())
        for route in described_routes(sqlite_env.app.routes)
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    assert included == ENDPOINTS | ADMIN_ENDPOINTS


async def test_admin_operations_declare_their_scope(sqlite_env: ServerEnv) -> None:
    """Each admin operation requires the adminToken scheme with its own scope (read for GET,
    write otherwise), documents 401 and 403 with the Bearer challenge, and its path parameters."""
    document = await _document(sqlite_env)
    scheme = document["components"]["securitySchemes"]["adminToken"]
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == ISSUER + "/token"
    assert set(flow["scopes"]) == set(ADMIN_SCOPES)
    for path, method in ADMIN_ENDPOINTS:
        operation = document["paths"][path][method]
        ((name, (scope,)),) = operation["security"][0].items()
        resource = path.split("/")[3]
        if (
            resource == "users"
            and path.count("/") >= 5
            and path.split("/")[5]
            in (
                "grants",
                "sessions",
            )
        ):
            resource = path.split("/")[5]
        if resource == "invitations":  # an invitation makes a user account
            resource = "users"
        action = "read" if method == "get" else "write"
        assert (name, scope) == ("adminToken", f"admin:{resource}:{action}"), (path, method)
        assert len(operation["security"]) == 1  # no anonymous alternative
        responses = operation["responses"]
        assert {"400", "401", "403", "404", "429"} <= set(responses)
        assert "WWW-Authenticate" in responses["401"]["headers"]
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}


async def test_served_routes_are_plain_starlette_routes_with_their_description(
    sqlite_env: ServerEnv,
) -> None:
    """The endpoints are served without FastAPI's per-request machinery (no dependency
    solving): each is a Starlette ``Route`` whose description is an ``APIRoute`` beside it, for
    the same path and methods."""
    app = sqlite_env.app
    routes = [r for r in app.routes if isinstance(r, Route) and r.path != app.openapi_url]
    served = {(r.path, m.lower()) for r in routes for m in r.methods or ()}
    assert served >= ENDPOINTS
    for r in routes:
        assert not isinstance(r, APIRoute), r.path
        assert isinstance(r, DescribedRoute), r.path
        assert (r.described.path, r.described.methods) == (r.path, r.methods)


async def test_get_routes_do_not_answer_head(sqlite_env: ServerEnv) -> None:
    """As before (FastAPI's routes): HEAD is not implied by GET."""
    response = await sqlite_env.http.head("/jwks.json")
    assert response.status_code == 405


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
