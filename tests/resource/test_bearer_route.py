"""BearerRoute: the route checks the token itself, so FastAPI does not solve the dependency.

What must hold: the same answers and OpenAPI document as FastAPI's own resolution
(``test_fastapi.py`` runs its whole suite under both route classes), the dependency really not
solved, the token checked before the body is read, and FastAPI's own resolution, unchanged,
wherever the route cannot stand in for it (overrides, two resource servers, endpoints that are
not plain functions).
"""

import functools
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from pydantic import BaseModel, field_validator

from tokensmith.resource import BearerRoute, Principal, ResourceServer
from tokensmith.resource.errors import InvalidTokenError
from tokensmith.resource.fastapi import _PrincipalDependency

READER = Principal(
    subject="alice",
    client_id="app",
    scopes=frozenset({"docs:read", "docs:write"}),
    claims={},
    token_type="at+jwt",
)


class StaticValidator:
    """Accepts ``good`` (READER) and counts the validations."""

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self, token: str) -> Principal:
        self.calls += 1
        if token != "good":
            raise InvalidTokenError("unknown token")
        return READER


class Note(BaseModel):
    text: str


def build(rs: ResourceServer, route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    app.router.route_class = route_class
    Reader = Annotated[Principal, rs.require_scopes("docs:read")]

    @app.get("/async")
    async def read_async(principal: Reader, q: int = 0) -> dict[str, Any]:
        return {"sub": principal.subject, "q": q}

    @app.get("/sync")
    def read_sync(principal: Reader, request: Request) -> dict[str, Any]:
        return {"sub": principal.subject, "path": request.url.path}

    @app.get("/gate", dependencies=[rs.require_scopes("docs:write")])
    async def gate() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/notes")
    async def add(principal: Reader, note: Note) -> dict[str, str]:
        return {"sub": principal.subject, "text": note.text}

    @app.get("/twice", dependencies=[rs.require_scopes("docs:admin")])
    async def twice(principal: Reader, again: Annotated[Principal, rs.authenticated]) -> bool:
        return principal is again

    async def partial_endpoint(tag: str, principal: Reader) -> dict[str, str]:
        return {"sub": principal.subject, "tag": tag}

    app.add_api_route("/partial", functools.partial(partial_endpoint, "p"), methods=["GET"])

    router = APIRouter(route_class=route_class)

    @router.get("/me")
    async def me(principal: Annotated[Principal, rs.authenticated]) -> dict[str, str]:
        return {"sub": principal.subject}

    app.include_router(router, prefix="/included", dependencies=[rs.require_scopes("docs:read")])
    return app


@pytest.fixture
def rs() -> ResourceServer:
    return ResourceServer(StaticValidator(), realm="docs")  # type: ignore[arg-type]


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The scopes of every call FastAPI makes to a ResourceServer dependency."""
    calls: list[list[str]] = []
    original = _PrincipalDependency.__call__

    async def counted(
        self: _PrincipalDependency, request: Request, security_scopes: SecurityScopes
    ) -> Principal:
        calls.append(security_scopes.scopes)
        return await original(self, request, security_scopes)

    monkeypatch.setattr(_PrincipalDependency, "__call__", counted)
    return calls


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
        yield client


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/async?q=3", {}),
    ("GET", "/async?q=x", {}),
    ("GET", "/sync", {}),
    ("GET", "/gate", {}),
    ("POST", "/notes", {"json": {"text": "hi"}}),
    ("POST", "/notes", {"json": {"wrong": 1}}),
    ("GET", "/twice", {}),
    ("GET", "/partial", {}),
    ("GET", "/included/me", {}),
]
AUTHORIZATION = [None, "Bearer good", "Bearer bad", "Bearer not a token", "Basic Zm9vOmJhcg=="]


async def answers(app: FastAPI) -> list[tuple[int, str, str | None]]:
    out = []
    async for client in client_for(app):
        for method, path, extra in REQUESTS:
            for value in AUTHORIZATION:
                headers = {} if value is None else {"Authorization": value}
                response = await client.request(method, path, headers=headers, **extra)
                out.append(
                    (
                        response.status_code,
                        response.text,
                        response.headers.get("www-authenticate"),
                    )
                )
    return out


async def test_same_answers_and_openapi_as_fastapis_resolution(
    rs: ResourceServer, solved: list[list[str]]
) -> None:
    standard = build(rs, APIRoute)
    bearer = build(rs, BearerRoute)
    expected = await answers(standard)
    assert await answers(bearer) == expected
    assert {status for status, _, _ in expected} == {200, 401, 403, 422}
    assert bearer.openapi() == standard.openapi()


async def test_the_dependency_is_not_solved_by_fastapi(
    rs: ResourceServer, solved: list[list[str]]
) -> None:
    """The point of the route class: FastAPI never calls the dependency on its fast path. Only
    the endpoint that is a ``functools.partial`` (not a plain function) falls back."""
    app = build(rs, BearerRoute)
    good = {"Authorization": "Bearer good"}
    async for client in client_for(app):
        for path in ("/async", "/sync", "/gate", "/included/me"):
            response = await client.get(path, headers=good)
            assert response.status_code == 200, (path, response.text)
        assert (await client.post("/notes", headers=good, json={"text": "x"})).status_code == 200
        assert solved == []
        validator = rs.validator
        assert isinstance(validator, StaticValidator)
        before = validator.calls
        # three dependencies on one route: one validation, each one's scopes checked in order
        response = await client.get("/twice", headers=good)
        assert response.status_code == 403
        assert response.headers["www-authenticate"] == (
            'Bearer realm="docs", error="insufficient_scope", scope="docs:admin"'
        )
        assert validator.calls == before + 1
        assert solved == []
        assert (await client.get("/partial", headers=good)).json() == {"sub": "alice", "tag": "p"}
        assert solved == [["docs:read"]]


async def test_principal_is_the_same_object_under_every_name(rs: ResourceServer) -> None:
    app = FastAPI()
    app.router.route_class = BearerRoute

    @app.get("/twice")
    async def twice(
        principal: Annotated[Principal, rs.require_scopes("docs:read")],
        again: Annotated[Principal, rs.authenticated],
    ) -> bool:
        return principal is again and principal is READER

    async for client in client_for(app):
        response = await client.get("/twice", headers={"Authorization": "Bearer good"})
        assert response.json() is True


async def test_token_checked_before_the_body_is_read(rs: ResourceServer) -> None:
    """FastAPI reads and parses the body before it solves dependencies: without a token, a
    malformed JSON body gets 422 there. The route class refuses first, reading nothing."""
    received: list[bytes] = []

    async def app_reading(app: FastAPI, headers: list[tuple[bytes, bytes]]) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/notes",
            "raw_path": b"/notes",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), *headers],
            "server": ("rs.test", 80),
            "client": ("127.0.0.1", 1),
        }
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            received.append(b"{not json")
            return {"type": "http.request", "body": b"{not json", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    assert await app_reading(build(rs, APIRoute), []) == 422
    assert received
    received.clear()
    assert await app_reading(build(rs, BearerRoute), []) == 401
    assert received == []
    assert await app_reading(build(rs, BearerRoute), [(b"authorization", b"Bearer good")]) == 422


async def test_dependency_overrides_are_honoured(
    rs: ResourceServer, solved: list[list[str]]
) -> None:
    """Tests commonly override the dependency: the route then lets FastAPI resolve it."""
    app = build(rs, BearerRoute)
    stand_in = Principal(
        subject="tester", client_id="t", scopes=frozenset(), claims={}, token_type="at+jwt"
    )

    async def fake() -> Principal:
        return stand_in

    app.dependency_overrides[rs.require_scopes("docs:read").dependency] = fake
    async for client in client_for(app):
        assert (await client.get("/async")).json() == {"sub": "tester", "q": 0}
        app.dependency_overrides.clear()
        assert (await client.get("/async")).status_code == 401
        response = await client.get("/async", headers={"Authorization": "Bearer good"})
        assert response.json() == {"sub": "alice", "q": 0}
    assert solved == []


async def test_two_resource_servers_on_one_route_fall_back(
    rs: ResourceServer, solved: list[list[str]]
) -> None:
    other = ResourceServer(StaticValidator(), realm="other")  # type: ignore[arg-type]
    app = FastAPI()
    app.router.route_class = BearerRoute

    @app.get("/both", dependencies=[other.require_scopes("docs:write")])
    async def both(principal: Annotated[Principal, rs.require_scopes("docs:read")]) -> str:
        return principal.subject

    async for client in client_for(app):
        assert (await client.get("/both")).status_code == 401
        response = await client.get("/both", headers={"Authorization": "Bearer good"})
        assert response.json() == "alice"
    # FastAPI solved both: the first refused the request without a token, then each ran once
    assert solved == [["docs:write"], ["docs:write"], ["docs:read"]]


async def test_endpoints_run_where_fastapi_runs_them(rs: ResourceServer) -> None:
    """A plain function runs in the thread pool, its response validated there too (a large
    response model must not block the event loop), and a function marked as a coroutine
    function (asgiref's ``markcoroutinefunction``, Python < 3.13) is awaited: as FastAPI does."""
    threads: list[str] = []

    class Checked(BaseModel):
        sub: str

        @field_validator("sub")
        @classmethod
        def record(cls, value: str) -> str:
            threads.append(threading.current_thread().name)
            return value

    async def impl(principal: Principal) -> dict[str, str]:
        return {"sub": principal.subject}

    def marked(principal: Annotated[Principal, rs.require_scopes("docs:read")]) -> Any:
        return impl(principal)

    asgiref_sync = pytest.importorskip("asgiref.sync")
    asgiref_sync.markcoroutinefunction(marked)

    for route_class in (APIRoute, BearerRoute):
        app = FastAPI()
        app.router.route_class = route_class

        @app.get("/sync", response_model=Checked)
        def sync(principal: Annotated[Principal, rs.require_scopes("docs:read")]) -> Any:
            return {"sub": principal.subject}

        app.add_api_route("/marked", marked, methods=["GET"])
        threads.clear()
        async for client in client_for(app):
            good = {"Authorization": "Bearer good"}
            assert (await client.get("/sync", headers=good)).json() == {"sub": "alice"}
            assert (await client.get("/marked", headers=good)).json() == {"sub": "alice"}
        assert threads, route_class
        assert threads[0] != threading.current_thread().name, route_class


async def test_validation_errors_name_the_endpoint(rs: ResourceServer) -> None:
    """FastAPI's validation errors name the endpoint's file, line and function: the endpoint's,
    not the wrapper BearerRoute calls it through."""
    seen: list[tuple[str | None, int | None, str | None]] = []

    async def record(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        seen.append((exc.endpoint_file, exc.endpoint_line, exc.endpoint_function))
        return JSONResponse({"detail": "invalid"}, status_code=422)

    for route_class in (APIRoute, BearerRoute):
        app = FastAPI(exception_handlers={RequestValidationError: record})
        app.router.route_class = route_class

        @app.get("/count")
        async def count(
            principal: Annotated[Principal, rs.require_scopes("docs:read")], n: int
        ) -> int:
            return n

        async for client in client_for(app):
            response = await client.get("/count?n=x", headers={"Authorization": "Bearer good"})
            assert response.status_code == 422
    assert seen[0] == seen[1]
    assert seen[0][0] == __file__
    assert seen[0][2] == "count"


class StepUpServer(ResourceServer):
    """A subclass with its own check: the "admin" scope also needs an ``mfa`` claim."""

    async def authenticate(self, request: Request, required: Iterable[str] = ()) -> Principal:
        principal = await super().authenticate(request, required)
        if "admin" in set(required) and not principal.claims.get("mfa"):
            raise HTTPException(status_code=403, detail="mfa_required")
        return principal


async def test_each_dependency_goes_through_authenticate(solved: list[list[str]]) -> None:
    """A subclass's ``authenticate`` holds for every dependency of a route, as when FastAPI
    solves them (which calls it once per dependency): the step-up on the second is not skipped."""
    admin = Principal(
        subject="root", client_id="ops", scopes=frozenset({"admin"}), claims={}, token_type="at+jwt"
    )

    class AdminValidator:
        async def validate(self, token: str) -> Principal:
            return admin

    rs = StepUpServer(AdminValidator())  # type: ignore[arg-type]
    statuses = []
    for route_class in (APIRoute, BearerRoute):
        app = FastAPI()
        app.router.route_class = route_class

        @app.delete("/everything", dependencies=[rs.authenticated])
        async def wipe(principal: Annotated[Principal, rs.require_scopes("admin")]) -> str:
            return "wiped"

        async for client in client_for(app):
            response = await client.delete("/everything", headers={"Authorization": "Bearer t"})
            statuses.append((response.status_code, response.json()))
    assert statuses == [(403, {"detail": "mfa_required"})] * 2
    assert solved == [[], ["admin"]]  # FastAPI's two calls: none on BearerRoute's path


async def test_dependencies_listed_before_the_token_do_not_run_for_refused_requests(
    rs: ResourceServer,
) -> None:
    """The documented difference: the route checks the token before all other dependencies,
    even those listed before it, so their side effects do not happen for a refused request."""
    ran: list[str] = []

    async def count_request() -> None:
        ran.append("counted")

    for route_class, expected in ((APIRoute, ["counted"]), (BearerRoute, [])):
        app = FastAPI()
        app.router.route_class = route_class

        @app.get("/doc", dependencies=[Depends(count_request), rs.require_scopes("docs:read")])
        async def doc() -> str:
            return "doc"

        ran.clear()
        async for client in client_for(app):
            assert (await client.get("/doc")).status_code == 401
        assert ran == expected, route_class
        async for client in client_for(app):
            response = await client.get("/doc", headers={"Authorization": "Bearer good"})
            assert response.json() == "doc"
        assert ran == [*expected, "counted"]
