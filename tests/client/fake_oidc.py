"""An OpenID Connect provider stand-in whose answers each test can corrupt.

Discovery, JWKS, authorize (auto-approves for ``fake.subject``), token endpoint
(``client_secret_basic``, PKCE S256) issuing ID tokens signed with its own ES256 key, UserInfo and
an ``end_session_endpoint``. ``fake.behaviour`` switches on one misbehaviour at a time, like the
OpenID conformance suite's RP tests.

Negative tokens (``alg: none``, a broken signature) are assembled here by hand from base64url
pieces so they never depend on the product's JOSE code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

_EC_KEY = ec.generate_private_key(ec.SECP256R1())
_OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = _OTHER_EC_KEY
_RSA_KEY: rsa.RSAPrivateKey | None = None


def rsa_key() -> rsa.RSAPrivateKey:
    global _RSA_KEY
    if _RSA_KEY is None:
        _RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _RSA_KEY


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


@dataclass
class FakeOIDC:
    client_id: str = "oidc-client"
    client_secret: str = "oidc-secret"
    url: str = ""
    subject: str = "248289761001"
    email: str | None = "jane@example.org"
    email_verified: bool = True
    name: str = "Jane Doe"
    deny: bool = False
    alg: str = "ES256"
    behaviour: set[str] = field(default_factory=set)
    rotated: bool = False
    sid: str = "sid-1"
    claim_overrides: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    token_requests: int = 0
    userinfo_requests: int = 0
    jwks_requests: int = 0
    discovery_requests: int = 0

    @property
    def issuer(self) -> str:
        return self.url

    # keys -------------------------------------------------------------------------------------
    def _private_key(self) -> Any:
        if self.alg == "RS256":
            return rsa_key()
        return _OTHER_EC_KEY if self.rotated else _EC_KEY

    @property
    def kid(self) -> str:
        return "k2" if self.rotated else "k1"

    def _jwk(self) -> dict[str, Any]:
        key = self._private_key().public_key()
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(key))
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        return dict(jwk)

    # endpoints --------------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        self.discovery_requests += 1
        if "discovery-down" in self.behaviour:
            return PlainTextResponse("Service Unavailable", status_code=503)
        doc: dict[str, Any] = {
            "issuer": "https://evil.example"
            if "discovery-issuer-mismatch" in self.behaviour
            else self.issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "end_session_endpoint": f"{self.url}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }
        if "no-pkce-metadata" in self.behaviour:
            del doc["code_challenge_methods_supported"]
        if "advertise-iss" in self.behaviour:
            doc["authorization_response_iss_parameter_supported"] = True
        return JSONResponse(doc)

    async def jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [self._jwk()]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        redirect_uri = q["redirect_uri"]
        params: dict[str, str] = {"state": q.get("state", "")}
        if self.deny:
            params.update(error="access_denied", error_description="User cancelled")
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "redirect_uri": redirect_uri,
                "challenge": q.get("code_challenge"),
                "method": q.get("code_challenge_method"),
                "nonce": q.get("nonce"),
                "client_id": q.get("client_id"),
            }
            params["code"] = code
        if "iss-wrong" in self.behaviour:
            params["iss"] = "https://evil.example"
        elif "iss-missing" not in self.behaviour:
            params["iss"] = self.issuer
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = dict(parse_qsl((await request.body()).decode()))
        if self._basic_credentials(request) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if "token-error" in self.behaviour:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "nope"}, status_code=400
            )
        if "token-500" in self.behaviour:
            return PlainTextResponse("Internal Server Error", status_code=500)
        code = self.codes.pop(form.get("code", ""), None)
        if code is None or code["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        if (
            code["method"] != "S256"
            or b64(hashlib.sha256(verifier.encode()).digest()) != code["challenge"]
        ):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "PKCE"}, status_code=400
            )
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = self.subject
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(nonce=code["nonce"], access_token=access_token),
            },
            headers={"Cache-Control": "no-store"},
        )

    @staticmethod
    def _basic_credentials(request: Request) -> tuple[str, str] | None:
        """RFC 6749 §2.3.1: Basic over the form-urlencoded client id and secret."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except ValueError:
            return None
        client_id, sep, secret = decoded.partition(":")
        return (unquote_plus(client_id), unquote_plus(secret)) if sep else None

    async def userinfo(self, request: Request) -> Response:
        self.userinfo_requests += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        sub = "someone-else" if "userinfo-wrong-sub" in self.behaviour else self.subject
        return JSONResponse(
            {
                "sub": sub,
                "email": self.email,
                "email_verified": self.email_verified,
                "name": self.name,
            }
        )

    # ID tokens --------------------------------------------------------------------------------
    def id_token(self, *, nonce: str | None, access_token: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "name": self.name,
            "sid": self.sid,
        }
        if self.email is not None and "no-email-in-id-token" not in self.behaviour:
            claims.update(email=self.email, email_verified=self.email_verified)
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["at_hash"] = b64(digest[:16])
        b = self.behaviour
        if "wrong-nonce" in b:
            claims["nonce"] = "not-the-nonce"
        if "wrong-aud" in b:
            claims["aud"] = "someone-else"
        if "multi-aud-no-azp" in b:
            claims["aud"] = [self.client_id, "someone-else"]
        if "wrong-iss" in b:
            claims["iss"] = "https://evil.example"
        if "expired" in b:
            claims["exp"] = now - 3600
            claims["iat"] = now - 7200
        if "missing-iat" in b:
            del claims["iat"]
        if "missing-sub" in b:
            del claims["sub"]
        if "wrong-at-hash" in b:
            claims["at_hash"] = b64(b"\x00" * 16)
        claims.update(self.claim_overrides)
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT"}
        if "no-kid" in b:
            del header["kid"]
        if "unknown-kid" in b:
            header["kid"] = "k-unknown"
        if "alg-none" in b:
            return f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims)}."
        if "hs256-with-public-key" in b:
            # the classic confusion: HMAC keyed with the provider's public JWK
            secret = json.dumps(self._jwk()).encode()
            signing_input = f"{b64json({'alg': 'HS256', 'kid': 'k1'})}.{b64json(claims)}"
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{b64(mac)}"
        if "bad-signature" in b:
            token = jwt.encode(claims, _OTHER_EC_KEY, algorithm="ES256", headers=header)
            return token
        if "tampered" in b:
            token = jwt.encode(claims, self._private_key(), algorithm=self.alg, headers=header)
            head, _, sig = token.split(".")
            forged = dict(claims, sub="admin")
            return f"{head}.{b64json(forged)}.{sig}"
        return jwt.encode(claims, self._private_key(), algorithm=self.alg, headers=header)

    def logout_token(
        self,
        *,
        typ: str = "logout+jwt",
        drop: tuple[str, ...] = (),
        key: Any = None,
        **overrides: Any,
    ) -> str:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.4)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_hex(8),
            "sub": self.subject,
            "sid": self.sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        for name in drop:
            claims.pop(name)
        claims.update(overrides)
        header = {"kid": self.kid, "typ": typ}
        if typ == "none-alg":
            return f"{b64json({'alg': 'none', 'typ': 'logout+jwt'})}.{b64json(claims)}."
        signing_key = key if key is not None else self._private_key()
        return jwt.encode(claims, signing_key, algorithm=self.alg, headers=header)

    async def logout(self, request: Request) -> Response:
        return PlainTextResponse("logged out")

    def app(self, base_url: str) -> Starlette:
        self.url = base_url
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
                Route("/logout", self.logout),
            ]
        )
