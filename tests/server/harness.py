"""A test harness around the in-process authorization server: an admin on its database, and
browser-like HTTP clients (own cookie jar, no automatic redirects) that drive the login and
consent pages the way a person would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from sqlalchemy import text

from tokensmith.admin import Admin
from tokensmith.core.clock import FakeClock
from tokensmith.core.registration import NewClient
from tokensmith.server.app import create_app
from tokensmith.settings import Settings

API = "https://api.clouddocs.test"
REDIRECT = "https://rp.test/cb"
PASSWORD = "correct horse battery"
WRITABLE_TABLES = (
    "ts_interactions",
    "ts_authorization_codes",
    "ts_grants",
    "ts_access_tokens",
    "ts_sessions",
    "ts_consents",
)
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def hidden_fields(html: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(html))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Flow:
    """What one authorization request sent and got back."""

    response: httpx.Response
    params: dict[str, str]
    verifier: str

    @property
    def location(self) -> str:
        return self.response.headers.get("location", "")

    @property
    def result(self) -> dict[str, str]:
        return query_of(self.location)

    @property
    def code(self) -> str:
        return self.result["code"]


@dataclass
class ServerEnv:
    settings: Settings
    clock: FakeClock
    admin: Admin
    app: Any
    transport: httpx.ASGITransport
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @classmethod
    @asynccontextmanager
    async def start(
        cls, settings: Settings, clock: FakeClock, **app_kwargs: Any
    ) -> AsyncIterator[ServerEnv]:
        """``app_kwargs``: more arguments of ``create_app`` (``accounts=...``)."""
        app = create_app(settings, clock=clock, **app_kwargs)
        async with app.router.lifespan_context(app), Admin(settings, clock=clock) as admin:
            env = cls(settings, clock, admin, app, httpx.ASGITransport(app=app))
            try:
                yield env
            finally:
                for client in env._clients:
                    await client.aclose()

    def browser(self) -> httpx.AsyncClient:
        """A new browser: its own cookies, redirects not followed."""
        client = httpx.AsyncClient(
            transport=self.transport, base_url=self.settings.issuer, follow_redirects=False
        )
        self._clients.append(client)
        return client

    @property
    def http(self) -> httpx.AsyncClient:
        if not self._clients:
            return self.browser()
        return self._clients[0]

    # -- database ----------------------------------------------------------------------------

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the server's database (for checks that need to look at rows)."""
        async with self.admin.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def count(self, table: str) -> int:
        """The number of rows of ``table`` (a trusted name, e.g. ``ts_interactions``)."""
        return int(await self.scalar(f"SELECT COUNT(*) FROM {table}"))

    async def row_counts(self) -> dict[str, int]:
        """Row counts of the tables a request may write to."""
        return {name: await self.count(name) for name in WRITABLE_TABLES}

    # -- registration ----------------------------------------------------------------------

    async def api(self, scopes: tuple[str, ...] = ("docs:read", "docs:write")) -> str:
        existing = {a.identifier for a in await self.admin.list_apis()}
        if API not in existing:
            await self.admin.create_api(identifier=API, scopes=scopes, name="CloudDocs API")
        return API

    async def client(self, **kwargs: Any) -> NewClient:
        await self.api()
        defaults: dict[str, Any] = {
            "name": "CloudDocs Web",
            "client_type": "confidential",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
            "scopes": ["docs:read", "docs:write"],
            "api": API,
        }
        defaults.update(kwargs)
        return await self.admin.create_client(**defaults)

    async def user(self, username: str = "alice", **kwargs: Any) -> Any:
        kwargs.setdefault("email", f"{username}@example.com")
        return await self.admin.create_user(username=username, password=PASSWORD, **kwargs)

    # -- browser flows ---------------------------------------------------------------------

    def authorize_params(
        self, client: NewClient, **overrides: str | None
    ) -> tuple[dict[str, str], str]:
        verifier, challenge = pkce_pair()
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": client.client.client_id,
            "redirect_uri": client.client.redirect_uris[0],
            "scope": "docs:read",
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}, verifier

    async def start_authorize(
        self, ua: httpx.AsyncClient, client: NewClient, **overrides: str | None
    ) -> Flow:
        params, verifier = self.authorize_params(client, **overrides)
        response = await ua.get("/authorize?" + urlencode(params))
        return Flow(response, params, verifier)

    async def login(
        self,
        ua: httpx.AsyncClient,
        response: httpx.Response,
        *,
        username: str = "alice",
        password: str = PASSWORD,
        decision: str | None = "allow",
    ) -> httpx.Response:
        """From a redirect to the login or consent page, act like the user until the browser
        is sent off the authorization server (or a page stops the flow)."""
        for _ in range(6):
            location = response.headers.get("location", "")
            if response.status_code not in (302, 303) or location.startswith("http"):
                return response
            page = await ua.get(location)
            if page.status_code != 200:
                return page
            fields = hidden_fields(page.text)
            path = urlsplit(location).path
            if path == self.settings.login_path:
                fields.update(username=username, password=password)
            elif decision is None:
                return page
            else:
                fields["decision"] = decision
            response = await ua.post(path, data=fields)
        raise AssertionError("the login flow did not finish")

    async def authorize(
        self,
        ua: httpx.AsyncClient,
        client: NewClient,
        *,
        username: str = "alice",
        decision: str | None = "allow",
        **overrides: str | None,
    ) -> Flow:
        flow = await self.start_authorize(ua, client, **overrides)
        final = await self.login(ua, flow.response, username=username, decision=decision)
        return Flow(final, flow.params, flow.verifier)

    async def redeem(
        self,
        client: NewClient,
        code: str,
        verifier: str | None,
        *,
        auth: str = "basic",
        **extra: str,
    ) -> httpx.Response:
        form: dict[str, str] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.client.redirect_uris[0],
        }
        if verifier is not None:
            form["code_verifier"] = verifier
        form.update(extra)
        return await self.token(client, form, auth=auth)

    async def token(
        self, client: NewClient, form: dict[str, str], *, auth: str = "basic"
    ) -> httpx.Response:
        headers = {}
        form = dict(form)
        if auth == "basic" and client.client_secret:
            headers["Authorization"] = basic(client.client.client_id, client.client_secret)
        elif auth == "post" and client.client_secret:
            form.update(client_id=client.client.client_id, client_secret=client.client_secret)
        elif auth in ("none", "basic", "post"):
            form["client_id"] = client.client.client_id
        # auth="raw": the form is sent as given
        async with httpx.AsyncClient(transport=self.transport, base_url=self.settings.issuer) as c:
            return await c.post(self.settings.token_path, data=form, headers=headers)

    async def post_as(self, client: NewClient, path: str, form: dict[str, str]) -> httpx.Response:
        """POST a form to ``path``, authenticated as ``client`` (Basic, or client_id if public)."""
        headers = {}
        form = dict(form)
        if client.client_secret:
            headers["Authorization"] = basic(client.client.client_id, client.client_secret)
        else:
            form["client_id"] = client.client.client_id
        async with httpx.AsyncClient(transport=self.transport, base_url=self.settings.issuer) as c:
            return await c.post(path, data=form, headers=headers)

    async def introspect(self, client: NewClient, token: str, **extra: str) -> dict[str, Any]:
        response = await self.post_as(
            client, self.settings.introspect_path, {"token": token, **extra}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def revoke(self, client: NewClient, token: str, **extra: str) -> httpx.Response:
        return await self.post_as(client, self.settings.revoke_path, {"token": token, **extra})

    async def jwks(self) -> jwt.PyJWKSet:
        async with httpx.AsyncClient(transport=self.transport, base_url=self.settings.issuer) as c:
            return jwt.PyJWKSet.from_dict((await c.get("/jwks.json")).json())

    async def decode_access_token(self, token: str, audience: str = API) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        key = (await self.jwks())[header["kid"]]
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=audience,
            issuer=self.settings.issuer,
            options={"require": ["exp", "iat", "sub", "jti"]},
        )
        assert header["typ"] == "at+jwt"
        return claims


def assert_page(response: httpx.Response, status: int = 400) -> None:
    """An error page of the authorization server: HTML, no redirect anywhere."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "http-equiv" not in response.text.lower()


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    """An RFC 6749 §5.2 JSON error with ``Cache-Control: no-store``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers.get("cache-control", "")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


def assert_redirect_error(
    response: httpx.Response,
    error: str,
    *,
    redirect_uri: str,
    state: str | None,
    issuer: str,
    status: int = 302,
) -> dict[str, str]:
    """An error sent to the client's redirect URI with ``error_description``, ``state`` and
    ``iss`` (RFC 6749 §4.1.2.1, RFC 9207)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    result = query_of(location)
    assert result["error"] == error, result
    assert result.get("error_description"), result
    assert result.get("state") == state, result
    assert result["iss"] == issuer, result
    assert "code" not in result
    return result


def basic(client_id: str, secret: str) -> str:
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()
