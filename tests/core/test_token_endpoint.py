"""The token endpoint as ordered named steps (``core.token``) over a grant registry
(``core.grants``): the order of the steps, what each grant is shown, and a new grant plugging in
without any change to the dispatcher. Stores are in-memory stand-ins that fail the test on any
call the path under test must not make."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent
from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.clock import FakeClock
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import (
    InvalidClient,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.core.grants import (
    REFUSED_GRANTS,
    GrantRegistry,
    TokenRequest,
    authorization_code,
    client_credentials,
    refresh_token,
)
from tokensmith.core.issuance import TokenIssuer
from tokensmith.core.keys import KeyRing, SigningKey, generate_private_key, public_jwk
from tokensmith.core.models import Api, Client, TokenResponse
from tokensmith.core.policy import Endpoints, ServerPolicy
from tokensmith.core.ports import Stores
from tokensmith.core.secrets import digest
from tokensmith.core.token import STEPS, TokenEndpoint, default_grants

ISSUER = "https://as.test"
API_ID = "https://api.test"
NOW = 1_800_000_000
PEPPER = b"p" * 32
SECRET = "s3cret"
SRC = Path(__file__).resolve().parents[2] / "src" / "tokensmith" / "core"


def _policy() -> ServerPolicy:
    return ServerPolicy(
        issuer=ISSUER,
        endpoints=Endpoints(
            authorize=f"{ISSUER}/authorize",
            token=f"{ISSUER}/token",
            jwks=f"{ISSUER}/jwks",
            userinfo=f"{ISSUER}/userinfo",
            logout=f"{ISSUER}/logout",
            revoke=f"{ISSUER}/revoke",
            introspect=f"{ISSUER}/introspect",
        ),
        signing_alg="ES256",
        access_token_ttl=300,
        authorization_code_ttl=60,
        interaction_ttl=600,
        session_ttl=3600,
        id_token_ttl=300,
        refresh_token_idle_ttl=3600,
        refresh_token_absolute_ttl=86400,
        public_refresh_token_idle_ttl=1800,
        public_refresh_token_absolute_ttl=43200,
        client_cache_ttl=30.0,
        max_param_length=2048,
    )


def _ring() -> KeyRing:
    private = generate_private_key("ES256")
    jwk = public_jwk(private, "ES256")
    return KeyRing([SigningKey(jwk["kid"], "ES256", private, jwk, created_at=0, activates_at=0)])


RING = _ring()


def machine(*grant_types: str) -> Client:
    return Client(
        client_id="m1",
        name="Machine",
        client_type="confidential",
        redirect_uris=(),
        grant_types=grant_types or ("client_credentials",),
        scopes=("docs:read",),
        apis=(API_ID,),
        token_endpoint_auth_method="client_secret_post",
        secret_digest=digest(SECRET, PEPPER),
    )


class _Lookup:
    def __init__(self, values: dict[str, Any], calls: list[str], name: str) -> None:
        self.values, self.calls, self.name = values, calls, name

    async def get(self, key: str) -> Any:
        self.calls.append(f"{self.name}.get")
        return self.values.get(key)


class Stores_:
    """Clients and APIs in memory, every lookup recorded; any other store fails the test."""

    holds_connection = True

    def __init__(self, *clients: Client) -> None:
        self.calls: list[str] = []
        self.clients = _Lookup({c.client_id: c for c in clients}, self.calls, "clients")
        self.apis = _Lookup(
            {API_ID: Api(identifier=API_ID, name="Docs", scopes=("docs:read",), created_at=0)},
            self.calls,
            "apis",
        )

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"stores.{name} used")


class Limit:
    def __init__(self) -> None:
        self.counted: list[str] = []

    async def authenticated(self, client: Client) -> None:
        self.counted.append(f"authenticated:{client.client_id}")

    async def failed(self) -> None:
        self.counted.append("failed")


def endpoint(grants: GrantRegistry | None = None) -> tuple[TokenEndpoint, list[AuditEvent]]:
    events: list[AuditEvent] = []
    context = ServerContext(
        policy=_policy(), clock=lambda: float(NOW), keys=RING, pepper=PEPPER, audit=events.append
    )
    return (
        TokenEndpoint(
            context=context,
            issuer=TokenIssuer(context),
            authenticator=ClientAuthenticator(context),
            grants=grants if grants is not None else default_grants(),
        ),
        events,
    )


def recording(ep: TokenEndpoint) -> list[str]:
    """Wrap every step of ``ep`` so that the names of the steps run are recorded."""
    ran: list[str] = []

    def wrap(name: str, step: Callable[[Any], Awaitable[None] | None]) -> Any:
        async def run(exchange: Any) -> None:
            ran.append(name)
            pending = step(exchange)
            if pending is not None:
                await pending

        return run

    ep.steps = tuple((name, wrap(name, step)) for name, step in ep.steps)
    return ran


def form(grant_type: str | None, **extra: str) -> dict[str, str]:
    params = {"client_id": "m1", "client_secret": SECRET, **extra}
    if grant_type is not None:
        params["grant_type"] = grant_type
    return params


async def call(
    ep: TokenEndpoint, params: dict[str, str], stores: Stores_, limit: Limit | None = None
) -> TokenResponse:
    return await ep.handle(params, None, stores, limit=limit)  # type: ignore[arg-type]


def test_the_steps_are_named_and_ordered() -> None:
    assert STEPS == (
        "parse",
        "check_grant_type",
        "authenticate_client",
        "check_client_grant",
        "find_grant",
        "run_grant",
        "audit",
    )
    ep, _ = endpoint()
    assert [name for name, _ in ep.steps] == list(STEPS)


async def test_a_token_request_runs_every_step_in_order() -> None:
    ep, events = endpoint()
    ran = recording(ep)
    response = await call(ep, form("client_credentials"), Stores_(machine()), Limit())
    assert response.scopes == ("docs:read",)
    assert ran == list(STEPS)
    assert [(e.event, e.client_id, e.detail) for e in events] == [
        (audit.TOKEN_ISSUED, "m1", {"grant_type": "client_credentials"})
    ]


async def test_missing_grant_type_stops_at_parse() -> None:
    ep, events = endpoint()
    ran = recording(ep)
    limit = Limit()
    with pytest.raises(InvalidRequest, match="grant_type is required"):
        await call(ep, form(None), Stores_(machine()), limit)
    assert ran == ["parse"]
    assert limit.counted == []
    assert events == []


@pytest.mark.parametrize("grant_type", sorted(REFUSED_GRANTS))
async def test_refused_grants_are_refused_before_any_credential_is_looked_at(
    grant_type: str,
) -> None:
    ep, _ = endpoint()
    ran = recording(ep)
    stores, limit = Stores_(machine(grant_type)), Limit()
    with pytest.raises(UnsupportedGrantType, match=r"not supported \(OAuth 2\.1\)"):
        await call(ep, form(grant_type), stores, limit)
    assert ran == ["parse", "check_grant_type"]
    assert stores.calls == []
    assert limit.counted == []


async def test_unknown_grants_are_refused_before_any_credential_is_looked_at() -> None:
    ep, _ = endpoint()
    stores, limit = Stores_(machine()), Limit()
    with pytest.raises(UnsupportedGrantType, match=r"^unsupported grant_type$"):
        await call(ep, form("urn:example:unknown"), stores, limit)
    assert stores.calls == []
    assert limit.counted == []


async def test_a_failed_authentication_is_counted_against_the_caller() -> None:
    ep, events = endpoint()
    ran = recording(ep)
    limit = Limit()
    with pytest.raises(InvalidClient):
        await call(ep, form("client_credentials", client_secret="wrong"), Stores_(machine()), limit)
    assert ran == ["parse", "check_grant_type", "authenticate_client"]
    assert limit.counted == ["failed"]
    assert events == []


async def test_a_grant_the_client_is_not_registered_for_is_refused_after_authentication() -> None:
    ep, events = endpoint()
    ran = recording(ep)
    limit = Limit()
    with pytest.raises(UnauthorizedClient, match="may not use the refresh_token grant"):
        await call(ep, form("refresh_token", refresh_token="x"), Stores_(machine()), limit)
    assert ran == ["parse", "check_grant_type", "authenticate_client", "check_client_grant"]
    assert limit.counted == ["authenticated:m1"]
    assert events == []


async def test_client_credentials_jwt_path_makes_no_store_call_once_cached() -> None:
    """The hot path (bench/): with the client and its API cached, no store is touched at all
    (``Stores_`` fails the test on anything but the two lookups)."""
    ep, _ = endpoint()
    stores = Stores_(machine())
    await call(ep, form("client_credentials"), stores)
    assert stores.calls == ["clients.get", "apis.get"]
    stores.calls.clear()
    await call(ep, form("client_credentials"), stores)
    assert stores.calls == []


async def test_what_the_context_knows_at_once_is_what_it_would_look_up() -> None:
    """The hot path's looks at the caches before it awaits (``known_client``,
    ``known_apis_for``) answer as the awaited lookups do, or ``None`` when only those can tell:
    nothing cached, an expired entry, a client id that is a document URL."""
    clock = FakeClock(float(NOW))
    ctx = ServerContext(policy=_policy(), clock=clock, keys=RING, pepper=PEPPER, audit=print)
    client = machine()
    dynamic = dataclasses.replace(client, client_id="d1", origin="registered")
    stores = Stores_(client, dynamic)
    other = "https://other.test"
    assert ctx.known_client("m1") is None
    assert ctx.known_apis_for(None, client) is None
    assert await ctx.get_client("m1", stores) == client
    await ctx.apis_for(None, client, stores)
    assert ctx.known_client("m1") == client
    for who in (client, dynamic):
        for resource in (None, API_ID, other):
            known = ctx.known_apis_for(resource, who)
            looked_up = await ctx.apis_for(resource, who, stores)
            # unknown only for an API a dynamic client might use that is not cached (none is
            # registered at ``other``: a lookup that finds nothing caches nothing)
            unknown = who is dynamic and resource == other
            assert known == (None if unknown else looked_up), (who.client_id, resource)
    assert ctx.known_apis_for(other, client) == {}  # not one of its APIs: never looked up
    assert ctx.known_client("https://rp.test/client.json") is None
    clock.advance(30.0)  # client_cache_ttl: the entries expire
    assert ctx.known_client("m1") is None
    assert ctx.known_apis_for(None, client) is None


class EchoGrant:
    """A grant the dispatcher has never heard of (an extension grant, RFC 6749 §4.5)."""

    grant_type = "urn:example:echo"
    parameters = frozenset({"subject"})
    audit_event = "token.echoed"

    def __init__(self) -> None:
        self.seen: list[TokenRequest] = []

    async def handle(
        self,
        request: TokenRequest,
        client: Client,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        stores: Stores,
    ) -> TokenResponse:
        self.seen.append(request)
        token, ttl = await issuer.access_token(
            client,
            subject=request.get("subject") or client.client_id,
            scopes=(),
            audience=API_ID,
            stores=stores,
        )
        return TokenResponse(access_token=token, expires_in=ttl, scopes=())


async def test_a_new_grant_plugs_in_by_registration_alone() -> None:
    grants = default_grants()
    echo = EchoGrant()
    grants.register(echo)
    ep, events = endpoint(grants)
    params = form(echo.grant_type, subject="alice", extra="not declared")
    response = await call(ep, params, Stores_(machine(echo.grant_type)), Limit())
    assert response.expires_in == 300
    (seen,) = echo.seen
    assert seen.grant_type == echo.grant_type
    assert dict(seen.params) == {"subject": "alice"}  # no credentials, nothing undeclared
    assert seen.authorization is None
    assert [(e.event, e.detail) for e in events] == [
        ("token.echoed", {"grant_type": echo.grant_type})
    ]


def test_the_registry_refuses_refused_grants_and_duplicates() -> None:
    grants = default_grants()
    for name in REFUSED_GRANTS:
        refused = EchoGrant()
        refused.grant_type = name
        with pytest.raises(ValueError, match="may not be registered"):
            grants.register(refused)
    with pytest.raises(ValueError, match="registered already"):
        grants.register(client_credentials.ClientCredentialsGrant())
    assert set(grants) == {"authorization_code", "client_credentials", "refresh_token"}


def test_a_grant_is_shown_only_what_it_declares() -> None:
    request = TokenRequest(
        "refresh_token",
        {"grant_type": "refresh_token", "refresh_token": "r", "client_secret": "s"},
        "Basic eDp5",
    )
    shown = request.only(frozenset({"refresh_token", "scope"}))
    assert dict(shown.params) == {"refresh_token": "r"}
    assert shown.authorization is None
    assert "client_secret" not in repr(request)
    assert "eDp5" not in repr(request)


DECLARED = {
    authorization_code.AuthorizationCodeGrant: {
        "code",
        "redirect_uri",
        "code_verifier",
        "resource",
    },
    client_credentials.ClientCredentialsGrant: {"scope", "resource"},
    refresh_token.RefreshTokenGrant: {"refresh_token", "scope", "resource"},
}


@pytest.mark.parametrize("grant", list(DECLARED), ids=lambda g: g.grant_type)
def test_each_grant_declares_exactly_the_parameters_it_reads(grant: type[Any]) -> None:
    """The declaration is what the grant's code reads (every ``request.get("...")``)."""
    assert grant.parameters == DECLARED[grant]
    tree = ast.parse(inspect.getsource(inspect.getmodule(grant)))  # type: ignore[arg-type]
    read = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "request"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert read == grant.parameters
    assert "params" not in {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}, (
        "a grant reads its parameters through request.get"
    )


def test_refresh_audits_as_refresh_others_as_issued() -> None:
    assert refresh_token.RefreshTokenGrant.audit_event == audit.TOKEN_REFRESHED
    assert authorization_code.AuthorizationCodeGrant.audit_event == audit.TOKEN_ISSUED
    assert client_credentials.ClientCredentialsGrant.audit_event == audit.TOKEN_ISSUED


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_server_and_the_grants_do_not_import_each_other() -> None:
    """Data flows down: grants know the context and the issuer, never the server (not even
    for annotations); the server reaches grants only through ``core.token``."""
    for module in sorted((SRC / "grants").glob("*.py")):
        assert not any(n.startswith("tokensmith.core.server") for n in _imports(module)), module
    assert not any(n.startswith("tokensmith.core.grants") for n in _imports(SRC / "server.py"))
    for module in ("context.py", "issuance.py"):
        imported = _imports(SRC / module)
        assert not any(
            n.startswith(
                ("tokensmith.core.server", "tokensmith.core.grants", "tokensmith.core.token")
            )
            for n in imported
        ), module
