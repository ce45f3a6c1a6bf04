"""RFC 9728 protected-resource metadata: the document, its URLs, the challenges naming it."""

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Request

from tokensmith.resource import (
    Principal,
    ProtectedResource,
    ResourceServer,
    TokenValidator,
    protected_resource_router,
)
from tokensmith.testing import LocalIssuer

RESOURCE = "https://api.example/mcp"
METADATA_URL = "https://api.example/.well-known/oauth-protected-resource/mcp"


def make_resource(**overrides: object) -> ProtectedResource:
    values: dict[str, object] = {
        "resource": RESOURCE,
        "authorization_servers": ["https://as.example"],
        "scopes_supported": ["mcp:tools", "docs:read"],
        "resource_name": "Example MCP server",
        "resource_documentation": "https://api.example/docs",
    }
    values.update(overrides)
    return ProtectedResource(**values)  # type: ignore[arg-type]


def make_app(validator: TokenValidator, resource: ProtectedResource | None) -> FastAPI:
    rs = ResourceServer(validator, realm="mcp", protected_resource=resource)
    app = FastAPI()
    if resource is not None:
        app.include_router(protected_resource_router(resource))

    @app.get("/tools")
    async def tools(principal: Annotated[Principal, rs.require_scopes("mcp:tools")]) -> str:
        return principal.subject

    @app.get("/me")
    async def me(principal: Annotated[Principal, rs.authenticated]) -> str:
        return principal.subject

    async def echo(scope: dict[str, object], receive: object, send: object) -> None:
        request = Request(scope)  # type: ignore[arg-type]
        principal: Principal = request.state.principal
        body = f"{principal.subject} {' '.join(sorted(principal.scopes))}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    app.mount("/asgi", rs.protect(echo, "mcp:tools"))  # type: ignore[arg-type]
    return app


@pytest.fixture
async def client(
    validator: TokenValidator, issuer: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(validator, make_resource()))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the document and where it is -------------------------------------------------------------


def test_metadata_url_inserts_the_well_known_segment_before_the_path() -> None:
    """RFC 9728 §3.1: /.well-known/oauth-protected-resource between host and path."""
    assert make_resource().metadata_url == METADATA_URL
    root = make_resource(resource="https://api.example")
    assert root.metadata_url == "https://api.example/.well-known/oauth-protected-resource"
    slash = make_resource(resource="https://api.example/")
    assert slash.metadata_path == "/.well-known/oauth-protected-resource"
    port = make_resource(resource="http://127.0.0.1:8080/a/b")
    assert port.metadata_url == "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resource", "http://api.example/mcp"),  # http off loopback
        ("resource", "https://api.example/mcp#frag"),  # RFC 9728 §1.2: no fragment
        ("resource", "https://api.example/mcp?x=1"),  # RFC 9728 §1.2: no query
        ("resource", "/mcp"),  # not absolute
        ("resource", "https://user:pw@api.example/mcp"),
        ("authorization_servers", []),
        ("authorization_servers", "https://as.example"),  # one string, not a list
        ("authorization_servers", ["http://as.example"]),
        ("resource_documentation", "javascript:alert(1)"),
        ("scopes_supported", ["two words"]),
        ("scopes_supported", ['quo"te']),
        ("max_age", -1),
    ],
)
def test_invalid_protected_resource_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        make_resource(**{field: value})


async def test_path_suffixed_metadata_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": ["https://as.example"],
        "scopes_supported": ["mcp:tools", "docs:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Example MCP server",
        "resource_documentation": "https://api.example/docs",
    }
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["access-control-allow-origin"] == "*"
    head = await client.head("/.well-known/oauth-protected-resource/mcp")
    assert head.status_code == 200


async def test_root_metadata_document_is_served_too(client: httpx.AsyncClient) -> None:
    """Clients without a resource_metadata hint fall back to the root well-known URL."""
    root = await client.get("/.well-known/oauth-protected-resource")
    assert root.status_code == 200
    assert root.json()["resource"] == RESOURCE


async def test_root_metadata_can_be_left_out(validator: TokenValidator) -> None:
    app = FastAPI()
    app.include_router(protected_resource_router(make_resource(), serve_root=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as client:
        assert (await client.get("/.well-known/oauth-protected-resource")).status_code == 404
        assert (await client.get("/.well-known/oauth-protected-resource/mcp")).status_code == 200


async def test_optional_members_left_out_when_unset() -> None:
    resource = ProtectedResource(resource=RESOURCE, authorization_servers=("https://as.example",))
    assert resource.metadata() == {
        "resource": RESOURCE,
        "authorization_servers": ["https://as.example"],
        "bearer_methods_supported": ["header"],
    }


# -- challenges ---------------------------------------------------------------------------------


async def test_401_without_token_points_to_metadata_and_names_scope(
    client: httpx.AsyncClient,
) -> None:
    """RFC 9728 §5.1: resource_metadata on 401; RFC 6750 §3: scope of the route."""
    response = await client.get("/tools")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="mcp", scope="mcp:tools", resource_metadata="{METADATA_URL}"'
    )


async def test_401_of_route_without_scopes_has_no_scope(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="mcp", resource_metadata="{METADATA_URL}"'
    )


async def test_401_invalid_token_points_to_metadata(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    foreign = issuer.token(scopes=["mcp:tools"], audience="https://other.example")
    response = await client.get("/tools", headers=bearer(foreign))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{METADATA_URL}"' in challenge


async def test_403_insufficient_scope_names_needed_scope_and_metadata(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    """Step-up: the 403 says which scope to ask for and where the metadata is."""
    response = await client.get("/tools", headers=bearer(issuer.token(scopes=["docs:read"])))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="mcp", error="insufficient_scope", scope="mcp:tools", '
        f'resource_metadata="{METADATA_URL}"'
    )


async def test_challenge_without_protected_resource_is_unchanged(
    validator: TokenValidator,
) -> None:
    transport = httpx.ASGITransport(app=make_app(validator, None))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as client:
        response = await client.get("/tools")
        assert response.headers["www-authenticate"] == 'Bearer realm="mcp"'
        assert (await client.get("/.well-known/oauth-protected-resource")).status_code == 404


# -- protecting any ASGI app --------------------------------------------------------------------


async def test_protected_asgi_app_refuses_without_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/asgi/anything", content=b"{}")
    assert response.status_code == 401
    assert response.json() == {"detail": "missing_token"}
    assert f'resource_metadata="{METADATA_URL}"' in response.headers["www-authenticate"]
    assert response.headers["cache-control"] == "no-store"


async def test_protected_asgi_app_refuses_missing_scope(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(scopes=["docs:read"])
    response = await client.post("/asgi/x", headers=bearer(token))
    assert response.status_code == 403
    assert 'error="insufficient_scope", scope="mcp:tools"' in response.headers["www-authenticate"]


async def test_protected_asgi_app_refuses_other_audience(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(scopes=["mcp:tools"], audience="https://other.example")
    response = await client.post("/asgi/x", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_protected_asgi_app_gets_the_principal(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(sub="dana", scopes=["mcp:tools", "docs:read"])
    response = await client.post("/asgi/x", headers=bearer(token))
    assert response.status_code == 200
    assert response.text == "dana docs:read mcp:tools"


class NeverCalled:
    async def validate(self, token: str) -> Principal:
        raise AssertionError("a WebSocket handshake must be refused before validation")


def test_protected_asgi_app_refuses_websockets() -> None:
    """protect() guards HTTP; a WebSocket never reaches the app (closed before accept: 403)."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    reached: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        reached.append(str(scope["type"]))

    rs = ResourceServer(NeverCalled(), protected_resource=make_resource())  # type: ignore[arg-type]
    client = TestClient(rs.protect(app, "mcp:tools"))  # type: ignore[arg-type]
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.code == 1008
    assert reached == []
