"""CORS for browser apps: token, revocation and userinfo only, allowlisted origins only, never
credentials, never ``/authorize`` or the pages (checklist BCP-26 / W-93)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from tests.support.settings import FAST_HASH
from tokensmith.server.app import create_app
from tokensmith.server.cors import CorsSettings
from tokensmith.settings import Settings

ISSUER = "https://as.test"
SPA = "https://spa.example"
EVIL = "https://evil.example"


@pytest.fixture
async def as_http(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings, cors_origins=[SPA])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield client


def preflight_headers(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        out["Access-Control-Request-Headers"] = headers
    return out


def assert_no_cors(response: httpx.Response) -> None:
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("path", "method"),
    [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET"), ("/userinfo", "POST")],
)
async def test_preflight_from_allowed_origin(
    as_http: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await as_http.options(
        path, headers=preflight_headers(SPA, method, "content-type, authorization")
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA
    assert method in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    assert "Origin" in response.headers["vary"]


async def test_preflight_from_other_origin_is_refused(as_http: httpx.AsyncClient) -> None:
    response = await as_http.options("/token", headers=preflight_headers(EVIL))
    assert response.status_code == 403
    assert_no_cors(response)


async def test_preflight_with_other_method_or_header_is_refused(as_http: httpx.AsyncClient) -> None:
    wrong_method = await as_http.options("/token", headers=preflight_headers(SPA, "PUT"))
    assert wrong_method.status_code == 403
    assert_no_cors(wrong_method)
    wrong_header = await as_http.options("/token", headers=preflight_headers(SPA, "POST", "x-evil"))
    assert wrong_header.status_code == 403
    assert_no_cors(wrong_header)


async def test_preflight_allows_the_header_swagger_ui_sends(as_http: httpx.AsyncClient) -> None:
    response = await as_http.options(
        "/token", headers=preflight_headers(SPA, "POST", "x-requested-with, content-type")
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA
    assert "x-requested-with" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("requested", [" ", "content-type, ", ",authorization"])
async def test_preflight_ignores_empty_items_of_the_requested_headers(
    as_http: httpx.AsyncClient, requested: str
) -> None:
    response = await as_http.options("/token", headers=preflight_headers(SPA, "POST", requested))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA


async def test_null_origin_is_never_allowed(as_http: httpx.AsyncClient) -> None:
    response = await as_http.post(
        "/token", data={"grant_type": "refresh_token"}, headers={"Origin": "null"}
    )
    assert_no_cors(response)


@pytest.mark.parametrize(
    "path", ["/authorize", "/login", "/consent", "/logout", "/introspect", "/jwks.json"]
)
async def test_no_cors_beyond_the_three_endpoints(as_http: httpx.AsyncClient, path: str) -> None:
    preflight = await as_http.options(path, headers=preflight_headers(SPA, "GET"))
    assert_no_cors(preflight)
    response = await as_http.get(path, headers={"Origin": SPA})
    assert_no_cors(response)


async def test_token_response_carries_cors_for_allowed_origin_only(
    as_http: httpx.AsyncClient,
) -> None:
    form = {"grant_type": "authorization_code", "code": "nope", "client_id": "nobody"}
    allowed = await as_http.post("/token", data=form, headers={"Origin": SPA})
    assert allowed.status_code in (400, 401)
    assert allowed.headers["access-control-allow-origin"] == SPA
    assert "access-control-allow-credentials" not in allowed.headers
    assert "Origin" in allowed.headers["vary"]
    other = await as_http.post("/token", data=form, headers={"Origin": EVIL})
    assert other.status_code == allowed.status_code
    assert_no_cors(other)
    no_origin = await as_http.post("/token", data=form)
    assert_no_cors(no_origin)


async def test_userinfo_exposes_the_bearer_challenge(as_http: httpx.AsyncClient) -> None:
    response = await as_http.get(
        "/userinfo", headers={"Origin": SPA, "Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == SPA
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


async def test_revoke_response_carries_cors(as_http: httpx.AsyncClient) -> None:
    response = await as_http.post(
        "/revoke", data={"token": "x", "client_id": "nobody"}, headers={"Origin": SPA}
    )
    assert response.headers["access-control-allow-origin"] == SPA


async def test_no_origins_configured_means_no_cors(sqlite_url: str) -> None:
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings, cors_origins=[])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            preflight = await client.options("/token", headers=preflight_headers(SPA))
            assert_no_cors(preflight)
            response = await client.post("/token", data={}, headers={"Origin": SPA})
            assert_no_cors(response)


def test_settings_read_the_allowlist_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "TOKENSMITH_CORS_ORIGINS", '["https://SPA.example", "http://127.0.0.1:8003"]'
    )
    assert CorsSettings().cors_origins == ("https://spa.example", "http://127.0.0.1:8003")
    monkeypatch.delenv("TOKENSMITH_CORS_ORIGINS")
    assert CorsSettings().cors_origins == ()


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "null",
        "https://spa.example/",
        "https://spa.example/app",
        "https://*.example",
        "ftp://spa.example",
        "https://spa.example?x=1",
        "https://user@spa.example",
    ],
)
def test_settings_refuse_what_is_not_an_exact_origin(origin: str) -> None:
    with pytest.raises(ValidationError):
        CorsSettings(cors_origins=(origin,))


async def test_cors_and_the_metrics_route_label_apply_under_a_root_path(sqlite_url: str) -> None:
    """Behind a proxy that serves the server under a prefix (``root_path``), the path the
    layers see starts with it: CORS and the metrics' route label take the path below it, as
    the router does (before, CORS never applied there and every request counted as 'other')."""
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings, cors_origins=[SPA])
    app.root_path = "/auth"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            preflight = await client.options("/auth/token", headers=preflight_headers(SPA))
            answer = await client.post(
                "/auth/token", data={"grant_type": "client_credentials"}, headers={"Origin": SPA}
            )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SPA
    assert answer.status_code == 401  # no such client: the answer still carries CORS
    assert answer.headers["access-control-allow-origin"] == SPA
    counted = {key[0] for key in app.state.metrics.request_counts}
    assert "/token" in counted
    assert "other" not in counted
