"""Single-use credentials prepared before a measurement, through the real endpoints.

Codes: one browser logs in and consents once through the login and consent forms; each further
``GET /authorize`` of that browser then redirects at once with a fresh code (PKCE S256). Refresh
tokens: each from its own code exchange, so every one starts its own grant.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bench.seed import PASSWORD, REDIRECT, USERNAME, Seeded

T = TypeVar("T")
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def code_body(code: str, verifier: str) -> str:
    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
    )


def refresh_body(refresh_token: str) -> str:
    return urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token})


async def _gather(n: int, make: Callable[[], Awaitable[T]], concurrency: int) -> list[T]:
    results: list[T] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            results.append(await make())

    share, extra = divmod(n, concurrency)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
    return results


class Browser:
    """A logged-in browser of the bench user, with consent given to the web client."""

    def __init__(
        self,
        base_url: str,
        seeded: Seeded,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        scope: str = "docs:read",
    ) -> None:
        self.seeded = seeded
        self.scope = scope  # with "openid", each code exchange also signs an id_token
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.http = httpx.AsyncClient(
            base_url=base_url,
            follow_redirects=False,
            limits=limits,
            timeout=30.0,
            transport=transport,
        )

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    def _authorize_url(self, challenge: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.seeded.web_id,
            "redirect_uri": REDIRECT,
            "scope": self.scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "openid" in self.scope.split():
            params["nonce"] = secrets.token_urlsafe(8)
        return "/authorize?" + urlencode(params)

    async def login(self) -> tuple[str, str]:
        """Authorize, log in and consent through the forms; the first (code, verifier)."""
        verifier, challenge = pkce_pair()
        response = await self.http.get(self._authorize_url(challenge))
        for _ in range(6):
            location = response.headers.get("location", "")
            if location.startswith(REDIRECT):
                return _code_of(location), verifier
            if response.status_code not in (302, 303):
                raise RuntimeError(f"authorize flow stopped: {response.status_code}")
            page = await self.http.get(location)
            page.raise_for_status()
            fields = dict(_HIDDEN.findall(page.text))
            path = urlsplit(location).path
            if path.endswith("/login"):
                fields.update(username=USERNAME, password=PASSWORD)
            else:
                fields["decision"] = "allow"
            response = await self.http.post(path, data=fields)
        raise RuntimeError("the login flow did not finish")

    async def sign_in(self, username: str, password: str) -> str:
        """One password login through the forms, as a new browser: ``GET /authorize`` (to the
        login page), ``GET /login`` (the form and its CSRF token), ``POST /login``; the
        ``Location`` the login redirects to (the consent page or the client). Raises on anything
        else (a wrong password, a throttled attempt, an error)."""
        self.http.cookies.clear()
        _, challenge = pkce_pair()
        response = await self.http.get(self._authorize_url(challenge))
        location = response.headers.get("location", "")
        if response.status_code not in (302, 303) or "/login" not in location:
            raise RuntimeError(f"authorize did not ask for a login: {response.status_code}")
        page = await self.http.get(location)
        page.raise_for_status()
        fields = dict(_HIDDEN.findall(page.text))
        fields.update(username=username, password=password)
        response = await self.http.post(urlsplit(location).path, data=fields)
        location = response.headers.get("location", "")
        if response.status_code not in (302, 303) or "/login" in location:
            raise RuntimeError(f"login refused: {response.status_code}")
        return location

    async def code(self) -> tuple[str, str]:
        """A fresh (code, verifier) from the logged-in session: one ``GET /authorize``."""
        verifier, challenge = pkce_pair()
        response = await self.http.get(self._authorize_url(challenge))
        location = response.headers.get("location", "")
        if not location.startswith(REDIRECT):
            raise RuntimeError(f"authorize did not redirect with a code: {response.status_code}")
        return _code_of(location), verifier

    async def codes(self, n: int, concurrency: int = 16) -> list[tuple[str, str]]:
        return await _gather(n, self.code, concurrency)

    async def refresh_token(self) -> str:
        code, verifier = await self.code()
        response = await self.http.post(
            "/token",
            content=code_body(code, verifier),
            headers={
                "Authorization": self.seeded.web_auth,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        response.raise_for_status()
        token: str = response.json()["refresh_token"]
        return token

    async def refresh_tokens(self, n: int, concurrency: int = 16) -> list[str]:
        return await _gather(n, self.refresh_token, concurrency)


def _code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]
