"""Schemathesis against the OpenAPI description of the authorization-server endpoints
(generated from the routes, ``server/schemas.py``), with the app in-process (ASGI) on a SQLite
file holding a registered API, clients and a user.

Properties: no 5xx (``not_a_server_error``), and every response conforms to the description:
its status code is documented, its media type and headers are the documented ones and its body
fits the schema (an error is exactly the RFC 6749 §5.2 object). A run of the token endpoint with
random codes and refresh tokens persists nothing.

Bounded and reproducible: few examples per operation, ``derandomize=True`` (the same cases on
every run), ``deadline=None``. See docs/fuzzing.md for a longer local run.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.harness import REDIRECT, ServerEnv, basic
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.admin_access import ADMIN_PATH
from tokensmith.core.clock import FakeClock
from tokensmith.core.registration import NewClient
from tokensmith.server.app import create_app
from tokensmith.server.routes.admin import OPERATIONS as ADMIN_API_OPERATIONS
from tokensmith.settings import Settings

# Examples per operation and mode; TOKENSMITH_FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("TOKENSMITH_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STATE_TABLES = (
    "ts_authorization_codes",
    "ts_grants",
    "ts_access_tokens",
    "ts_refresh_tokens",
    "ts_interactions",
    "ts_sessions",
    "ts_consents",
    "ts_revoked_jtis",
    "ts_used_jtis",
)
# Revocation and logout last: they end the tokens and session the other operations are fed.
OPERATIONS = [
    ("/authorize", "GET"),
    ("/authorize", "POST"),
    ("/token", "POST"),
    ("/token", "GET"),
    ("/introspect", "POST"),
    ("/userinfo", "GET"),
    ("/userinfo", "POST"),
    ("/.well-known/oauth-authorization-server", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/jwks.json", "GET"),
    ("/logout", "GET"),
    ("/logout", "POST"),
    ("/revoke", "POST"),
]
# The admin API, every operation, most cases with a real admin token (``_steer``).
ADMIN_OPERATIONS = [
    (ADMIN_PATH + op.path.replace(":path", ""), op.method) for op in ADMIN_API_OPERATIONS
]
# Operations named by a path parameter meet random ids (404): only these reach a success.
ADMIN_WITH_SUCCESS = {
    ("/admin/v1/apis", "GET"),
    ("/admin/v1/clients", "GET"),
    ("/admin/v1/users", "GET"),
    ("/admin/v1/keys", "GET"),
    ("/admin/v1/keys/rotate", "POST"),
    ("/admin/v1/keys/prune", "POST"),
}

# Operations whose success needs what random data cannot have (a CSRF token of a session).
NO_SUCCESS = {("/token", "GET"), ("/logout", "POST")} | {
    op for op in ADMIN_OPERATIONS if op not in ADMIN_WITH_SUCCESS
}

# Operations without parameters or body: nothing to generate outside the schema.
NO_INPUT = {
    # admin operations with no body and no query: only path parameters, always strings (an
    # empty one is no path), so nothing outside the schema can be sent
    *(
        (ADMIN_PATH + op.path.replace(":path", ""), op.method)
        for op in ADMIN_API_OPERATIONS
        if op.body is None and not op.query
    ),
    ("/token", "GET"),
    ("/userinfo", "GET"),
    ("/.well-known/oauth-authorization-server", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/jwks.json", "GET"),
}


@dataclass
class Target:
    schema: Any
    db_path: Path
    client_id: str
    client_secret: str
    public_id: str
    tokens: dict[str, str]
    """Real tokens of alice for the confidential client (``TOKEN_KINDS``)."""
    admin_token: str
    """An admin API access token with every admin scope (of ``tokensmith admin bootstrap``'s
    client, its tokens made to last the run)."""

    def row_counts(self) -> dict[str, int]:
        with sqlite3.connect(self.db_path) as conn:
            return {
                t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in STATE_TABLES
            }


async def _register(settings: Settings) -> tuple[NewClient, NewClient, dict[str, str]]:
    """Register an API, two clients and a user; sign alice in once for real tokens."""
    async with ServerEnv.start(settings, FakeClock(time.time())) as env:
        confidential = await env.client(
            name="Fuzzed Web",
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "email", "offline_access", "docs:read"],
            can_introspect=True,
            post_logout_redirect_uris=["https://rp.test/bye"],
        )
        public = await env.client(
            name="Fuzzed Native",
            client_type="public",
            redirect_uris=["http://127.0.0.1/cb"],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "docs:read"],
            native=True,
        )
        await env.user("alice")
        flow = await env.authorize(
            env.browser(),
            confidential,
            scope="openid profile email offline_access docs:read",
            nonce="n",
        )
        response = await env.redeem(confidential, flow.code, flow.verifier)
        assert response.status_code == 200, response.text
        tokens = response.json()
        # A second grant whose refresh token the token endpoint may rotate (and then see reused).
        flow = await env.authorize(env.browser(), confidential, scope="openid offline_access")
        response = await env.redeem(confidential, flow.code, flow.verifier)
        assert response.status_code == 200, response.text
        tokens["rotatable_refresh_token"] = response.json()["refresh_token"]
        admin = await env.admin.bootstrap_admin()
        await env.admin.update_client(admin.client.client_id, changes={"access_token_ttl": 3600})
        response = await env.token(admin, {"grant_type": "client_credentials"})
        assert response.status_code == 200, response.text
        tokens["admin"] = response.json()["access_token"]
    return confidential, public, tokens


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Target]:
    path = tmp_path_factory.mktemp("fuzz") / "tokensmith.db"
    shutil.copyfile(sqlite_template, path)
    settings = Settings(  # type: ignore[arg-type]
        issuer=ISSUER,
        database_url=f"sqlite+aiosqlite:///{path}",
        token_rate_limit=None,
        token_failure_rate_limit=None,
        prune_interval=0,
        **FAST_HASH,
    )
    confidential, public, tokens = asyncio.run(_register(settings))
    assert confidential.client_secret is not None
    app = create_app(settings, cors_origins=())
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield Target(
            schema,
            path,
            confidential.client.client_id,
            confidential.client_secret,
            public.client.client_id,
            {k: tokens[k] for k in TOKEN_KINDS},
            tokens["admin"],
        )
    finally:
        asgi.shutdown_lifespans()


def _steer(case: Any, data: st.DataObject, target: Target, *, real_tokens: bool = True) -> None:
    """Point some cases at the registered clients and at real tokens, so that generation gets
    past the client lookup and the token check (random values all stop there)."""
    for container in (case.query, case.body):
        if not isinstance(container, dict):
            continue
        if "client_id" in container:
            choice = data.draw(st.sampled_from(["random", "confidential", "public"]))
            if choice != "random":
                container["client_id"] = (
                    target.client_id if choice == "confidential" else target.public_id
                )
            if isinstance(container.get("redirect_uri"), str) and data.draw(st.booleans()):
                container["redirect_uri"] = REDIRECT
        if real_tokens:
            for name, kinds in TOKEN_PARAMS.items():
                if name in container and data.draw(st.booleans()):
                    container[name] = target.tokens[data.draw(st.sampled_from(kinds))]
    path = case.operation.path
    headers = dict(case.headers or {})
    if path in ("/token", "/revoke", "/introspect") and data.draw(st.booleans()):
        headers["Authorization"] = basic(target.client_id, target.client_secret)
        if isinstance(case.body, dict):
            for name in ("client_id", "client_secret", "client_assertion"):
                case.body.pop(name, None)
    if path == "/token" and real_tokens and data.draw(st.integers(0, 4)) == 0:
        # A well-formed refresh: the first one succeeds (the 200 is checked against the schema),
        # the later ones are refresh-token reuse.
        token = target.tokens["rotatable_refresh_token"]
        case.body = {"grant_type": "refresh_token", "refresh_token": token}
        headers["Authorization"] = basic(target.client_id, target.client_secret)
    if path == "/introspect" and real_tokens and data.draw(st.integers(0, 4)) == 0:
        # A well-formed introspection by the registered client (its 200 is checked too).
        case.body = {"token": target.tokens[data.draw(st.sampled_from(TOKEN_KINDS))]}
        headers["Authorization"] = basic(target.client_id, target.client_secret)
    if path.startswith(ADMIN_PATH) and data.draw(st.integers(0, 3)) != 0:
        headers["Authorization"] = "Bearer " + target.admin_token
    if path == "/userinfo" and real_tokens and data.draw(st.booleans()):
        headers["Authorization"] = "Bearer " + target.tokens["access_token"]
        if isinstance(case.body, dict):
            case.body.pop("access_token", None)
    case.headers = headers


TOKEN_KINDS = ("access_token", "refresh_token", "id_token", "rotatable_refresh_token")
TOKEN_PARAMS = {
    "refresh_token": ("rotatable_refresh_token",),
    "token": ("access_token", "refresh_token", "id_token"),
    "access_token": ("access_token",),
    "id_token_hint": ("id_token",),
}


def _is_bare_challenge(response: Any) -> bool:
    return (
        response.status_code == 401
        and not response.content
        and response.headers.get("www-authenticate") == ['Bearer realm="tokensmith"']
    )


def _run(
    target: Target, path: str, method: str, mode: GenerationMode, *, real_tokens: bool = True
) -> list[int]:
    operation = target.schema[path][method]
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        _steer(case, data, target, real_tokens=real_tokens)
        response = case.call()
        statuses.append(response.status_code)
        if _is_bare_challenge(response):
            # RFC 6750 §3.1: no token, no error details; the one documented bodiless answer.
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
            return
        if mode is GenerationMode.POSITIVE:
            case.validate_response(response, checks=CHECKS)
        else:
            # Data outside the schema: still no 5xx, still a documented answer.
            case.validate_response(response, checks=CHECKS[:3])

    fuzz()
    return statuses


@pytest.mark.parametrize(("path", "method"), OPERATIONS + ADMIN_OPERATIONS)
def test_no_server_error_and_responses_conform(target: Target, path: str, method: str) -> None:
    statuses = _run(target, path, method, GenerationMode.POSITIVE)
    # The steering reaches past the client and token checks: the success answers were checked too.
    success = {"GET": {200, 302}, "POST": {200, 201, 303}}.get(method, {200, 201, 204})
    if (path, method) not in NO_SUCCESS:
        assert success & set(statuses), sorted(collections.Counter(statuses).items())


@pytest.mark.parametrize(
    ("path", "method"), [op for op in OPERATIONS + ADMIN_OPERATIONS if op not in NO_INPUT]
)
def test_data_outside_the_schema_is_refused_without_server_error(
    target: Target, path: str, method: str
) -> None:
    assert _run(target, path, method, GenerationMode.NEGATIVE)


def test_refused_token_requests_persist_nothing(target: Target) -> None:
    """Random codes, verifiers and refresh tokens, as the registered client or not: every
    request is refused and no row of codes, grants, tokens or sessions appears or changes."""
    before = target.row_counts()
    statuses = _run(target, "/token", "POST", GenerationMode.POSITIVE, real_tokens=False)
    assert statuses
    assert all(status >= 400 for status in statuses), statuses
    assert target.row_counts() == before
