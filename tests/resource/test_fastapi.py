"""ResourceServer: RFC 6750 errors, header-only tokens, no token in logs, OpenAPI PKCE scheme.

Every test that builds an app runs twice: with FastAPI's own ``APIRoute`` (FastAPI solves the
dependency) and with :class:`BearerRoute` (the route checks the token itself)."""

import logging
import re
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Security
from fastapi.routing import APIRoute
from fastapi.security import OAuth2AuthorizationCodeBearer

from tokensmith.resource import BearerRoute, Principal, ResourceServer, TokenValidator
from tokensmith.resource.errors import InvalidTokenError, ResourceError
from tokensmith.resource.fastapi import bearer_token, is_b64token
from tokensmith.testing import LocalIssuer

from .forge import FakeClock


class BrokenValidator:
    """A validator with a bug: it raises something that is not a ResourceError."""

    async def validate(self, token: str) -> Principal:
        raise RuntimeError("bug " + token)


@pytest.fixture(params=[APIRoute, BearerRoute], ids=["APIRoute", "BearerRoute"])
def route_class(request: pytest.FixtureRequest) -> type[APIRoute]:
    return request.param  # type: ignore[no-any-return]


def make_app(validator: object, route_class: type[APIRoute]) -> FastAPI:
    rs = ResourceServer(
        validator,  # type: ignore[arg-type]
        realm="docs",
        authorization_url="https://as.example/authorize",
        token_url="https://as.example/token",
        scopes={"docs:read": "Read documents", "docs:write": "Write documents"},
    )
    Reader = Annotated[Principal, rs.require_scopes("docs:read")]
    Writer = Annotated[Principal, rs.require_scopes("docs:read", "docs:write")]
    app = FastAPI()
    app.router.route_class = route_class

    @app.get("/read")
    async def read(principal: Reader) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.post("/write")
    async def write(principal: Writer) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/me")
    async def me(principal: Annotated[Principal, rs.authenticated]) -> dict[str, str]:
        return {"sub": principal.subject}

    return app


@pytest.fixture
async def client(
    validator: TokenValidator, route_class: type[APIRoute]
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(validator, route_class))
    async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_reaches_route(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    response = await client.get("/read", headers=bearer(issuer.token(scopes=["docs:read"])))
    assert response.status_code == 200
    assert response.json() == {"sub": "alice"}


async def test_no_token_401_without_error_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/read")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="docs"'


async def test_bad_token_401_invalid_token(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    response = await client.get("/read", headers=bearer(issuer.expired_token(scopes=["docs:read"])))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="docs", error="invalid_token"'


async def test_missing_scope_403_insufficient_scope(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    """BCP-20: a valid token without the scope is 403, not 401."""
    response = await client.post("/write", headers=bearer(issuer.token(scopes=["docs:read"])))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="docs", error="insufficient_scope", scope="docs:read docs:write"'
    )
    ok = await client.post(
        "/write", headers=bearer(issuer.token(scopes=["docs:read", "docs:write"]))
    )
    assert ok.status_code == 200


async def test_wrong_aud_401(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    """BCP-19: a token minted for another resource server is refused."""
    token = issuer.token(scopes=["docs:read"], audience="https://other.example")
    response = await client.get("/read", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_in_query_string_401(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    """BCP-33: ?access_token= is ignored; without the header there is no token."""
    token = issuer.token(scopes=["docs:read"])
    response = await client.get("/read", params={"access_token": token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="docs"'


async def test_token_in_form_body_401(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    token = issuer.token(scopes=["docs:read", "docs:write"])
    response = await client.post("/write", data={"access_token": token})
    assert response.status_code == 401


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_scheme_case_insensitive(
    issuer: LocalIssuer, client: httpx.AsyncClient, scheme: str
) -> None:
    token = issuer.token(scopes=["docs:read"])
    response = await client.get("/read", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200


async def test_other_scheme_is_no_token(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    response = await client.get("/read", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="docs"'


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", "Bearer <script>"])
async def test_malformed_bearer_401_invalid_token(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/read", headers={"Authorization": value})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_two_authorization_headers_400(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    token = issuer.token(scopes=["docs:read"])
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await client.get("/read", headers=headers)
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_authenticated_needs_no_scope(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(issuer.token()))
    assert response.json() == {"sub": "alice"}


async def test_token_never_logged_nor_echoed(
    issuer: LocalIssuer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """BCP-32: neither the logs nor the error bodies contain the token."""
    caplog.set_level(logging.DEBUG)
    valid = issuer.token(scopes=["docs:read"])
    invalid = issuer.expired_token(scopes=["docs:read"])
    bodies = []
    for token in (valid, invalid):
        for path in ("/read", "/write"):
            response = await client.request(
                "GET" if path == "/read" else "POST", path, headers=bearer(token)
            )
            bodies.append(response.text + str(response.headers))
    assert "token expired" in caplog.text  # the failure was logged ...
    for token in (valid, invalid):
        assert token not in caplog.text  # ... but not the token
        assert token.split(".")[2] not in caplog.text
        assert all(token not in body for body in bodies)


async def test_validator_bug_is_not_a_500(issuer: LocalIssuer, route_class: type[APIRoute]) -> None:
    transport = httpx.ASGITransport(app=make_app(BrokenValidator(), route_class))
    async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
        response = await client.get("/read", headers=bearer(issuer.token()))
    assert response.status_code == 401
    assert "bug" not in response.text


async def test_unreachable_issuer_is_503(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock, route_class: type[APIRoute]
) -> None:
    validator = TokenValidator(http=http, issuer="http://127.0.0.1:9", audience="a", clock=clock)
    transport = httpx.ASGITransport(app=make_app(validator, route_class))
    async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
        response = await client.get("/read", headers=bearer(issuer.token()))
    assert response.status_code == 503
    assert "error=" not in response.headers["www-authenticate"]


def test_openapi_declares_authorization_code_flow_with_scopes(
    validator: TokenValidator, route_class: type[APIRoute]
) -> None:
    schema = make_app(validator, route_class).openapi()
    scheme = schema["components"]["securitySchemes"]["OAuth2"]
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "https://as.example/authorize"
    assert flow["tokenUrl"] == "https://as.example/token"
    assert set(flow["scopes"]) == {"docs:read", "docs:write"}
    assert schema["paths"]["/write"]["post"]["security"] == [
        {"OAuth2": ["docs:read", "docs:write"]}
    ]
    assert schema["paths"]["/read"]["get"]["security"] == [{"OAuth2": ["docs:read"]}]
    assert schema["paths"]["/me"]["get"]["security"] == [{"OAuth2": []}]
    assert scheme["type"] == "oauth2"
    assert scheme["description"].startswith("OAuth 2.0 authorization code flow")


async def test_security_scheme_object_is_not_called(
    issuer: LocalIssuer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One dependency per request reads the header (issue 17, item 7): FastAPI's
    ``OAuth2AuthorizationCodeBearer`` only describes the scheme in OpenAPI, it is not run."""

    async def called(*args: object) -> None:
        raise AssertionError("the FastAPI security scheme object ran")

    monkeypatch.setattr(OAuth2AuthorizationCodeBearer, "__call__", called)
    token = issuer.token(scopes=["docs:read", "docs:write"])
    for method, path in (("GET", "/read"), ("POST", "/write"), ("GET", "/me")):
        response = await client.request(method, path, headers=bearer(token))
        assert response.status_code == 200, (path, response.text)
    assert (await client.get("/read")).status_code == 401


_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "=",
        "==",
        "a",
        "a=",
        "a==",
        "a=b",
        "=a",
        "eyJ0.eyJ1.c2ln",
        "A-Za-z0-9._~+/",
        "a b",
        "a\tb",
        "a\n",
        "a,b",
        "a%3D",
        "tok\xe9n",
        "\u0661\u0662",  # Arabic-Indic digits: Unicode digits, not b64token DIGITs
        "\uff41\uff42\uff43",  # fullwidth letters
        "a\x00",
    ],
)
def test_b64token_check_is_the_rfc6750_grammar(value: str) -> None:
    """``is_b64token`` (two byte operations on every protected request) accepts exactly what
    the RFC 6750 §2.1 regex accepts."""
    assert is_b64token(value) is bool(_B64TOKEN.fullmatch(value))


def test_b64token_check_matches_the_regex_on_every_character() -> None:
    for code in range(0x250):
        for value in (chr(code), f"a{chr(code)}", f"{chr(code)}=", f"ab{chr(code)}=="):
            assert is_b64token(value) is bool(_B64TOKEN.fullmatch(value)), repr(value)


def _general_reading(value: bytes) -> str | None:
    """The ``Authorization`` value read the general way (Latin-1, blanks stripped, the scheme
    up to the first space, the credentials' grammar checked): what ``bearer_token`` gives for
    every value, whichever path it takes."""
    scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if not is_b64token(token):
        raise InvalidTokenError("malformed bearer token")
    return token


def _outcome(read: Callable[[bytes], str | None], value: bytes) -> object:
    try:
        return read(value)
    except ResourceError as exc:
        return type(exc)


def _fast_reading(value: bytes) -> str | None:
    connection = SimpleNamespace(scope={"headers": [(b"host", b"api"), (b"authorization", value)]})
    return bearer_token(connection)  # type: ignore[arg-type]


def test_bearer_token_fast_path_reads_as_the_general_path() -> None:
    """``bearer_token`` takes "Bearer <b64token>" straight from the bytes: for every value,
    near misses included, the token (or the refusal) is the general reading's."""
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_~+/"
    prefixes = ["Bearer ", "bearer ", "BEARER ", "Bearer  ", " Bearer ", "Bearer\t", "Bearer", ""]
    bodies = [jwt, "", "=", "==", "a==", "a=b", "=a", "a b", " a", "a ", "a\t", "a,b", "a\xe9"]
    bodies += [f"{jwt}{chr(code)}" for code in range(256)]
    bodies += [f"{chr(code)}a" for code in range(256)]
    for prefix in prefixes:
        for body in bodies:
            value = (prefix + body).encode("latin-1")
            expected = _outcome(_general_reading, value)
            assert _outcome(_fast_reading, value) == expected, value


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("Bearer  {token}  ", 200),  # surrounding blanks are not part of the token
        ("\tBearer {token}", 200),
        ("Bearer\t{token}", 401),  # the scheme ends at a space: "Bearer\t..." is another scheme
        ("Bearer {token}\xe9", 401),  # a Latin-1 byte after the token: malformed
    ],
)
async def test_authorization_header_read_from_the_asgi_headers(
    issuer: LocalIssuer, client: httpx.AsyncClient, value: str, status: int
) -> None:
    token = issuer.token(scopes=["docs:read"])
    header = value.format(token=token).encode("latin-1")
    response = await client.get("/read", headers=[(b"authorization", header)])
    assert response.status_code == status, response.headers


def make_nested_app(validator: TokenValidator, route_class: type[APIRoute]) -> FastAPI:
    """FastAPI's nested ``Security``: the scopes of the enclosing dependency accumulate into the
    ``SecurityScopes`` of the inner one (FastAPI's own OAuth2-scopes pattern)."""
    rs = ResourceServer(validator, realm="docs", scopes={"docs:read": "r", "docs:write": "w"})

    async def current_user(principal: Annotated[Principal, rs.require_scopes("docs:read")]) -> str:
        return principal.subject

    async def any_user(principal: Annotated[Principal, rs.authenticated]) -> str:
        return principal.subject

    app = FastAPI()
    app.router.route_class = route_class

    @app.post("/write")
    async def write(user: Annotated[str, Security(current_user, scopes=["docs:write"])]) -> str:
        return user

    @app.post("/admin")
    async def admin(user: Annotated[str, Security(any_user, scopes=["admin"])]) -> str:
        return user

    return app


async def test_nested_security_scopes_accumulate(
    issuer: LocalIssuer, validator: TokenValidator, route_class: type[APIRoute]
) -> None:
    app = make_nested_app(validator, route_class)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
        read_only = bearer(issuer.token(scopes=["docs:read"]))
        refused = await client.post("/write", headers=read_only)
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == (
            'Bearer realm="docs", error="insufficient_scope", scope="docs:read docs:write"'
        )
        both = bearer(issuer.token(scopes=["docs:read", "docs:write"]))
        assert (await client.post("/write", headers=both)).status_code == 200
        refused = await client.post("/admin", headers=both)
        assert refused.status_code == 403
        assert 'scope="admin"' in refused.headers["www-authenticate"]
        assert (
            await client.post("/admin", headers=bearer(issuer.token(scopes=["admin"])))
        ).status_code == 200
    schema = app.openapi()
    assert schema["paths"]["/write"]["post"]["security"] == [
        {"OAuth2": ["docs:write", "docs:read"]}
    ]
    assert schema["paths"]["/admin"]["post"]["security"] == [{"OAuth2": ["admin"]}]


def test_websocket_routes_check_the_handshake_token() -> None:
    """On a WebSocket route the dependencies read the handshake's ``Authorization`` header; a
    refusal closes the handshake with 1008 and the error code, never a server error."""
    from fastapi import WebSocket
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from tokensmith.resource.errors import InvalidTokenError

    class Static:
        async def validate(self, token: str) -> Principal:
            if token != "good":
                raise InvalidTokenError("unknown")
            return Principal(
                subject="alice",
                client_id="app",
                scopes=frozenset({"docs:read"}),
                claims={},
                token_type="at+jwt",
            )

    rs = ResourceServer(Static(), realm="docs")  # type: ignore[arg-type]
    app = FastAPI()

    @app.websocket("/read")
    async def read(
        websocket: WebSocket, principal: Annotated[Principal, rs.require_scopes("docs:read")]
    ) -> None:
        await websocket.accept()
        await websocket.send_text(principal.subject)
        await websocket.close()

    @app.websocket("/write", dependencies=[rs.require_scopes("docs:write")])
    async def write(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    client = TestClient(app)
    with client.websocket_connect("/read", headers=bearer("good")) as socket:
        assert socket.receive_text() == "alice"
    refusals = [
        ("/read", {}, "missing_token"),
        ("/read", bearer("bad"), "invalid_token"),
        ("/write", bearer("good"), "insufficient_scope"),
    ]
    for path, headers, reason in refusals:
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(path, headers=headers),
        ):
            pass
        assert (refused.value.code, refused.value.reason) == (1008, reason)
