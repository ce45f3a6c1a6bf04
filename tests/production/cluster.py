"""Helpers of the production tests: register a client and a user on the servers' database, get
codes through a browser, and call the token endpoint of one particular process."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from tests.live import PASSWORD, LiveServer, query_of
from tests.support.settings import FAST_HASH
from tokensmith.admin import Admin
from tokensmith.settings import Settings

API = "https://api.clouddocs.test"
REDIRECT = "https://rp.test/cb"
USERNAME = "alice"

SERVE_SETTINGS = {
    # Load tests must not be throttled; a small pool per process keeps three processes (and
    # other test runs on the same PostgreSQL) well below max_connections.
    "token_rate_limit": "",
    "database_pool_size": "4",
    "database_max_overflow": "4",
}


@dataclass(frozen=True)
class Tenant:
    """A confidential, first-party client (code, refresh and client credentials) and a user."""

    client_id: str
    client_secret: str

    @property
    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.client_id, self.client_secret)


def admin_settings(server: LiveServer) -> Settings:
    env = server.env
    return Settings(
        issuer=env["TOKENSMITH_ISSUER"],
        database_url=env["TOKENSMITH_DATABASE_URL"],
        **FAST_HASH,  # type: ignore[arg-type]
    )


async def register(server: LiveServer) -> Tenant:
    """An API, a client and a user in the servers' database (through ``Admin`` in-process, which
    is what the CLI calls; the CLI itself is tested in tests/cli/test_cli.py)."""
    async with Admin(admin_settings(server)) as admin:
        await admin.create_api(identifier=API, scopes=["docs:read"], name="CloudDocs API")
        created = await admin.create_client(
            name="CloudDocs Web",
            client_type="confidential",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scopes=["docs:read"],
            api=API,
            first_party=True,
        )
        await admin.create_user(username=USERNAME, password=PASSWORD)
    assert created.client_secret is not None
    return Tenant(created.client.client_id, created.client_secret)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorization_url(server: LiveServer, tenant: Tenant) -> tuple[str, str]:
    """An authorization request to ``server`` (PKCE S256) and its code verifier."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": tenant.client_id,
        "redirect_uri": REDIRECT,
        "scope": "docs:read",
        "state": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return server.url("/authorize?" + urlencode(params)), verifier


async def sign_in_code(
    server: LiveServer, ua: httpx.AsyncClient, tenant: Tenant
) -> tuple[str, str]:
    """A code (and its verifier) from ``server``: the user signs in once per browser ``ua``,
    later codes come through the SSO session. Fails the test (with the log) otherwise."""
    url, verifier = authorization_url(server, tenant)
    callback = await server.sign_in(ua, url, username=USERNAME)
    result = query_of(callback)
    if "code" not in result:
        server.fail(f"no code in the callback {callback}")
    return result["code"], verifier


async def token(
    http: httpx.AsyncClient, server: LiveServer, tenant: Tenant, form: dict[str, str]
) -> httpx.Response:
    return await http.post(server.url("/token"), data=form, auth=tenant.auth)


async def redeem(
    http: httpx.AsyncClient, server: LiveServer, tenant: Tenant, code: str, verifier: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    return await token(http, server, tenant, form)


async def refresh(
    http: httpx.AsyncClient, server: LiveServer, tenant: Tenant, refresh_token: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await token(http, server, tenant, form)


async def client_credentials(
    http: httpx.AsyncClient, server: LiveServer, tenant: Tenant
) -> httpx.Response:
    return await token(http, server, tenant, {"grant_type": "client_credentials"})


def outcomes(responses: Iterable[httpx.Response]) -> Counter[str]:
    """``200`` or ``STATUS error`` per response, counted (readable in assertion messages)."""
    counts: Counter[str] = Counter()
    for response in responses:
        if response.status_code == 200:
            counts["200"] += 1
            continue
        try:
            error = response.json().get("error")
        except ValueError:
            error = f"non-JSON body {response.text[:200]!r}"
        counts[f"{response.status_code} {error}"] += 1
    return counts


def logs(servers: Iterable[LiveServer]) -> str:
    return "\n".join(
        f"--- {server.base_url} ({server.log_path.name}) ---\n{server.log()}" for server in servers
    )


async def jwks(http: httpx.AsyncClient, server: LiveServer) -> dict[str, Any]:
    response = await http.get(server.url("/jwks.json"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verify_access_token(
    http: httpx.AsyncClient, server: LiveServer, access_token: str
) -> dict[str, Any]:
    """The claims of ``access_token``, verified with the JWKS published by ``server``."""
    kid = jwt.get_unverified_header(access_token)["kid"]
    key_set = jwt.PyJWKSet.from_dict(await jwks(http, server))
    claims: dict[str, Any] = jwt.decode(
        access_token,
        key_set[kid],
        algorithms=["ES256"],
        audience=API,
        issuer=server.issuer,
    )
    return claims
