"""A GitHub-API-compatible stand-in: the endpoints and payloads of GitHub's OAuth web flow.

``GET /login/oauth/authorize`` auto-approves for ``fake.current_user`` (or answers
``error=access_denied`` when ``fake.deny``), ``POST /login/oauth/access_token`` checks client
secret, code, redirect_uri and the PKCE S256 verifier and answers GitHub's JSON (errors with HTTP
200, like GitHub), ``GET /user`` and ``GET /user/emails`` serve the user's profile and addresses.
With ``expiring_tokens`` (GitHub Apps) it issues refresh tokens and honours
``grant_type=refresh_token``, rotating refresh tokens (each is accepted once, like GitHub's).
``hold_next_refresh`` parks the next refresh request until the event is set (a slow worker).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class GitHubUser:
    id: int
    login: str
    name: str | None
    emails: list[dict[str, Any]]


def email(address: str, *, primary: bool = False, verified: bool = True) -> dict[str, Any]:
    return {
        "email": address,
        "primary": primary,
        "verified": verified,
        "visibility": "private" if primary else None,
    }


USERS = {
    "alice": GitHubUser(
        id=1001,
        login="alice",
        name="Alice Liddell",
        emails=[
            email("alice-old@example.org", verified=False),
            email("alice@example.com", primary=True, verified=True),
            email("1001+alice@users.noreply.github.com", verified=True),
        ],
    ),
    "mallory": GitHubUser(
        id=1002,
        login="mallory",
        name=None,
        emails=[
            email("alice@example.com", primary=True, verified=False),
            email("mallory@example.net", verified=True),
        ],
    ),
    "bob": GitHubUser(
        id=1003, login="bob", name="Bob", emails=[email("bob@example.com", primary=True)]
    ),
}


@dataclass
class FakeGitHub:
    client_id: str = "gh-client"
    client_secret: str = "gh-secret"
    url: str = ""
    current_user: str = "alice"
    deny: bool = False
    expiring_tokens: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)
    token_requests: int = 0
    refresh_requests: int = 0
    api_authorizations: list[str] = field(default_factory=list)
    hold_next_refresh: asyncio.Event | None = None
    refresh_held: asyncio.Event = field(default_factory=asyncio.Event)

    def revoke_access_tokens(self) -> None:
        self.tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        self.refresh.clear()

    # endpoints --------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return PlainTextResponse("unknown client", status_code=404)
        redirect_uri = q["redirect_uri"]
        if self.deny:
            params = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "state": q.get("state", ""),
            }
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)
        code = secrets.token_hex(10)
        self.codes[code] = {
            "user": self.current_user,
            "redirect_uri": redirect_uri,
            "challenge": q.get("code_challenge"),
            "method": q.get("code_challenge_method"),
            "scope": q.get("scope", ""),
        }
        params = {"code": code, "state": q.get("state", "")}
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    async def access_token(self, request: Request) -> Response:
        self.token_requests += 1
        form = dict(parse_qsl((await request.body()).decode()))
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return self._error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                request,
            )
        if form.get("grant_type") == "refresh_token":
            self.refresh_requests += 1
            gate, self.hold_next_refresh = self.hold_next_refresh, None
            if gate is not None:
                self.refresh_held.set()
                await gate.wait()
            user = self.refresh.pop(str(form.get("refresh_token")), None)
            if user is None:
                return self._error(
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                    request,
                )
            return self._issue(user, request)
        code = self.codes.pop(str(form.get("code")), None)
        if code is None:
            return self._error(
                "bad_verification_code", "The code passed is incorrect or expired.", request
            )
        if form.get("redirect_uri") != code["redirect_uri"]:
            return self._error("redirect_uri_mismatch", "The redirect_uri MUST match.", request)
        verifier = str(form.get("code_verifier") or "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if code["method"] != "S256" or challenge != code["challenge"]:
            return self._error(
                "bad_verification_code", "The code_verifier does not match.", request
            )
        return self._issue(code["user"], request)

    def _issue(self, user: str, request: Request) -> Response:
        token = "gho_" + secrets.token_hex(16)
        self.tokens[token] = user
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "scope": "read:user,user:email",
        }
        if self.expiring_tokens:
            rt = "ghr_" + secrets.token_hex(16)
            self.refresh[rt] = user
            body.update(refresh_token=rt, expires_in=28800, refresh_token_expires_in=15897600)
        return self._answer(body, request)

    def _error(self, error: str, description: str, request: Request) -> Response:
        return self._answer(
            {
                "error": error,
                "error_description": description,
                "error_uri": "https://docs.github.com/",
            },
            request,
        )

    @staticmethod
    def _answer(body: dict[str, Any], request: Request) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(body)
        return PlainTextResponse(urlencode(body), media_type="application/x-www-form-urlencoded")

    def _user(self, request: Request) -> GitHubUser | None:
        auth = request.headers.get("authorization", "")
        self.api_authorizations.append(auth)
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        user = self.tokens.get(token)
        return None if user is None else USERS[user]

    async def user(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials", "status": "401"}, status_code=401)
        return JSONResponse(
            {
                "login": user.login,
                "id": user.id,
                "node_id": f"U_{user.id}",
                "type": "User",
                "name": user.name,
                "email": None,
            }
        )

    async def user_emails(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials", "status": "401"}, status_code=401)
        return JSONResponse(user.emails)

    def app(self, base_url: str) -> Starlette:
        self.url = base_url
        return Starlette(
            routes=[
                Route("/login/oauth/authorize", self.authorize),
                Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
                Route("/user", self.user),
                Route("/user/emails", self.user_emails),
            ]
        )
