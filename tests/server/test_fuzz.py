"""Schemathesis against the OpenAPI description of the authorization-server endpoints
(``server/openapi.py``), with the app in-process (ASGI) on a SQLite file holding a registered API,
clients and a user.

Properties: no 5xx (``not_a_server_error``), and every response conforms to the description:
its status code is documented, its media type and headers are the documented ones and its body
fits the schema (an error is exactly the RFC 6749 §5.2 object). A run of the token endpoint with
random codes and refresh tokens persists nothing.

Bounded and reproducible: few examples per operation, ``derandomize=True`` (the same cases on
every run), ``deadline=None``. See docs/fuzzing.md for a longer local run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
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

from tests.conftest import FAST_HASH, ISSUER
from tests.server.harness import API, PASSWORD, REDIRECT, basic
from tokensmith.admin import Admin
from tokensmith.server.app import create_app
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
OPERATIONS = [
    ("/authorize", "GET"),
    ("/authorize", "POST"),
    ("/token", "POST"),
    ("/token", "GET"),
    ("/revoke", "POST"),
    ("/introspect", "POST"),
    ("/userinfo", "GET"),
    ("/userinfo", "POST"),
    ("/.well-known/oauth-authorization-server", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/jwks.json", "GET"),
    ("/logout", "GET"),
    ("/logout", "POST"),
]

# Operations without parameters or body: nothing to generate outside the schema.
NO_INPUT = {
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

    def row_counts(self) -> dict[str, int]:
        with sqlite3.connect(self.db_path) as conn:
            return {
                t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in STATE_TABLES
            }


async def _register(settings: Settings) -> tuple[str, str, str]:
    async with Admin(settings) as admin:
        await admin.create_api(identifier=API, scopes=("docs:read", "docs:write"), name="Docs")
        confidential = await admin.create_client(
            name="Fuzzed Web",
            client_type="confidential",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "docs:read"],
            api=API,
            can_introspect=True,
            post_logout_redirect_uris=["https://rp.test/bye"],
        )
        public = await admin.create_client(
            name="Fuzzed Native",
            client_type="public",
            redirect_uris=["http://127.0.0.1/cb"],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "docs:read"],
            api=API,
            native=True,
        )
        await admin.create_user(username="alice", password=PASSWORD, email="alice@example.com")
    assert confidential.client_secret is not None
    return confidential.client.client_id, confidential.client_secret, public.client.client_id


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Target]:
    path = tmp_path_factory.mktemp("fuzz") / "tokensmith.db"
    shutil.copyfile(sqlite_template, path)
    settings = Settings(  # type: ignore[arg-type]
        issuer=ISSUER,
        database_url=f"sqlite+aiosqlite:///{path}",
        token_rate_limit=None,
        prune_interval=0,
        **FAST_HASH,
    )
    client_id, secret, public_id = asyncio.run(_register(settings))
    app = create_app(settings, cors_origins=())
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield Target(schema, path, client_id, secret, public_id)
    finally:
        asgi.shutdown_lifespans()


def _steer(case: Any, data: st.DataObject, target: Target) -> None:
    """Point some cases at the registered clients, so that generation gets past the client
    lookup (random ids all stop there)."""
    for container in (case.query, case.body):
        if isinstance(container, dict) and "client_id" in container:
            choice = data.draw(st.sampled_from(["random", "confidential", "public"]))
            if choice != "random":
                container["client_id"] = (
                    target.client_id if choice == "confidential" else (target.public_id)
                )
            if isinstance(container.get("redirect_uri"), str) and data.draw(st.booleans()):
                container["redirect_uri"] = REDIRECT
    path = case.operation.path
    if path in ("/token", "/revoke", "/introspect") and data.draw(st.booleans()):
        headers = dict(case.headers or {})
        headers["Authorization"] = basic(target.client_id, target.client_secret)
        case.headers = headers
        if isinstance(case.body, dict):
            for name in ("client_id", "client_secret", "client_assertion"):
                case.body.pop(name, None)


def _is_bare_challenge(response: Any) -> bool:
    return (
        response.status_code == 401
        and not response.content
        and response.headers.get("www-authenticate") == ['Bearer realm="tokensmith"']
    )


def _run(target: Target, path: str, method: str, mode: GenerationMode) -> list[int]:
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
        _steer(case, data, target)
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


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_server_error_and_responses_conform(target: Target, path: str, method: str) -> None:
    assert _run(target, path, method, GenerationMode.POSITIVE)


@pytest.mark.parametrize(("path", "method"), [op for op in OPERATIONS if op not in NO_INPUT])
def test_data_outside_the_schema_is_refused_without_server_error(
    target: Target, path: str, method: str
) -> None:
    assert _run(target, path, method, GenerationMode.NEGATIVE)


def test_refused_token_requests_persist_nothing(target: Target) -> None:
    """Random codes, verifiers and refresh tokens, as the registered client or not: every
    request is refused and no row of codes, grants, tokens or sessions appears or changes."""
    before = target.row_counts()
    statuses = _run(target, "/token", "POST", GenerationMode.POSITIVE)
    assert statuses
    assert all(status >= 400 for status in statuses), statuses
    assert target.row_counts() == before
