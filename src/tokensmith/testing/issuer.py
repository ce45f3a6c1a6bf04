"""A real, local OAuth 2.0 issuer for tests: real keys, real signed tokens, real HTTP.

:class:`LocalIssuer` mints RFC 9068 JWT access tokens with real ES256 (or RS256, PS256, EdDSA)
keys and serves, over HTTP on 127.0.0.1:

* ``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``
  (RFC 8414 / OIDC Discovery metadata: ``issuer``, ``jwks_uri``, ``introspection_endpoint``);
* ``/jwks.json`` with ``Cache-Control: max-age=<jwks_max_age>``;
* ``/introspect`` (RFC 7662) for the opaque tokens it issued, authenticating the resource server
  with ``client_secret_basic`` and answering ``{"active": false}`` for anything not active.

Set ``outage = True`` to make ``/jwks.json`` and ``/introspect`` answer 503 (an issuer outage).

Tokens validate with exactly the production :class:`tokensmith.resource.TokenValidator`.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import jwt

from tokensmith.core.client_auth import parse_basic
from tokensmith.core.errors import InvalidClient

from .keys import SigningKey

if TYPE_CHECKING:
    import httpx
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

    from tokensmith.resource import IntrospectionValidator, TokenValidator

__all__ = ["LocalIssuer"]

DEFAULT_AUDIENCE = "https://api.example.test"


class LocalIssuer:
    """An in-process issuer of real signed tokens (see the module docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        audience: str = DEFAULT_AUDIENCE,
        introspection_client_id: str = "resource-server",
        introspection_client_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.default_audience = audience
        self.introspection_client_id = introspection_client_id
        self.introspection_client_secret = introspection_client_secret or secrets.token_urlsafe(24)
        self._default_clock = clock
        self.clock = clock
        self.url = "http://127.0.0.1:0"  # replaced by serve()
        self._lock = threading.Lock()
        self._server: Any = None
        self.reset()

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to one fresh ES256 key, no opaque tokens, zeroed counters."""
        with self._lock:
            self.current_key = SigningKey.generate("ES256")
            self.keys: list[SigningKey] = [self.current_key]
            self.jwks_max_age: int | None = 300
            self.outage = False
            self.requests: Counter[str] = Counter()
            self._opaque: dict[str, dict[str, Any]] = {}
        self.clock = self._default_clock

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks.json"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/oauth-authorization-server"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.url}/introspect"

    @property
    def jwks_requests(self) -> int:
        """How many times ``/jwks.json`` was fetched since the last reset."""
        return self.requests["/jwks.json"]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "introspection_endpoint": self.introspection_endpoint,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    # -- keys -------------------------------------------------------------------------------

    def add_key(self, alg: str = "ES256", *, kid: str | None = None) -> SigningKey:
        """Publish a new key in the JWKS without signing with it yet."""
        key = SigningKey.generate(alg, kid=kid)
        with self._lock:
            self.keys = [*self.keys, key]
        return key

    def rotate_key(self, alg: str = "ES256", *, keep_old: bool = True) -> SigningKey:
        """Publish a new key and sign with it from now on; drop the old ones unless ``keep_old``."""
        key = SigningKey.generate(alg)
        with self._lock:
            self.keys = [*self.keys, key] if keep_old else [key]
            self.current_key = key
        return key

    def remove_key(self, kid: str) -> None:
        """Stop publishing the key ``kid``."""
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    # -- tokens -----------------------------------------------------------------------------

    def claims(
        self,
        *,
        sub: str = "alice",
        scopes: Iterable[str] = (),
        audience: str | list[str] | None = None,
        expires_in: float = 300,
        client_id: str = "test-client",
        issued_at: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The RFC 9068 claims of an access token (what :meth:`token` signs)."""
        now = self.clock() if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": self.default_audience if audience is None else audience,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "jti": secrets.token_urlsafe(12),
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        claims.update(extra or {})
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: SigningKey | None = None,
        typ: str | None = "at+jwt",
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` with ``key`` (the current key by default)."""
        key = key or self.current_key
        header: dict[str, Any] = {"kid": key.kid}
        if typ is not None:
            header["typ"] = typ
        header.update(headers or {})
        return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=header)

    def token(
        self,
        *,
        sub: str = "alice",
        scopes: Iterable[str] = (),
        audience: str | list[str] | None = None,
        expires_in: float = 300,
        client_id: str = "test-client",
        issued_at: float | None = None,
        extra: dict[str, Any] | None = None,
        key: SigningKey | None = None,
        typ: str | None = "at+jwt",
    ) -> str:
        """A valid JWT access token for ``sub`` with ``scopes`` (audience: the default one)."""
        claims = self.claims(
            sub=sub,
            scopes=scopes,
            audience=audience,
            expires_in=expires_in,
            client_id=client_id,
            issued_at=issued_at,
            extra=extra,
        )
        return self.sign(claims, key=key, typ=typ)

    def client_token(self, *, client_id: str = "machine-client", **kwargs: Any) -> str:
        """A client-credentials token: ``sub`` is the client id (RFC 9068 §2.2)."""
        return self.token(sub=client_id, client_id=client_id, **kwargs)

    def expired_token(self, **kwargs: Any) -> str:
        """A token that expired ten minutes ago (issued an hour ago)."""
        now = self.clock()
        return self.token(issued_at=now - 3600, expires_in=3000, **kwargs)

    def foreign_key_token(self, *, same_kid: bool = True, **kwargs: Any) -> str:
        """A token signed by a key the JWKS does not hold (with the current ``kid`` by default)."""
        alg = self.current_key.alg
        foreign = SigningKey.generate(alg, kid=self.current_key.kid if same_kid else None)
        return self.token(key=foreign, **kwargs)

    def id_token(self, *, sub: str = "alice", client_id: str = "test-client", **kwargs: Any) -> str:
        """An OpenID Connect ID token (``typ: JWT``, ``aud`` = client): not an access token."""
        return self.token(sub=sub, client_id=client_id, audience=client_id, typ="JWT", **kwargs)

    def opaque_token(
        self,
        *,
        sub: str = "alice",
        scopes: Iterable[str] = (),
        audience: str | None = None,
        expires_in: float = 300,
        client_id: str = "test-client",
        extra: dict[str, Any] | None = None,
    ) -> str:
        """An opaque access token, valid through the introspection endpoint.

        ``extra`` is merged into the introspection answer (to test odd answers).
        """
        token = "ts_at_" + secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._opaque[token] = {
                "active": True,
                "iss": self.url,
                "sub": sub,
                "aud": self.default_audience if audience is None else audience,
                "client_id": client_id,
                "scope": " ".join(scopes),
                "token_type": "Bearer",
                "iat": int(now),
                "exp": int(now + expires_in),
                **(extra or {}),
            }
        return token

    def revoke(self, token: str) -> None:
        """Revoke an opaque token: introspection answers ``{"active": false}`` from now on."""
        with self._lock:
            self._opaque.pop(token, None)

    # -- validators wired to this issuer ----------------------------------------------------

    def validator(self, http: httpx.AsyncClient, **kwargs: Any) -> TokenValidator:
        """A production :class:`TokenValidator` for this issuer (discovery over HTTP)."""
        from tokensmith.resource import TokenValidator

        kwargs.setdefault("audience", self.default_audience)
        return TokenValidator(http=http, issuer=self.url, **kwargs)

    def introspection_validator(
        self, http: httpx.AsyncClient, **kwargs: Any
    ) -> IntrospectionValidator:
        """A production :class:`IntrospectionValidator` holding this issuer's RS credentials."""
        from tokensmith.resource import IntrospectionValidator

        kwargs.setdefault("audience", self.default_audience)
        return IntrospectionValidator(
            http=http,
            issuer=self.url,
            client_id=self.introspection_client_id,
            client_secret=self.introspection_client_secret,
            **kwargs,
        )

    # -- HTTP -------------------------------------------------------------------------------

    def asgi_app(self) -> Any:
        """The issuer's endpoints as a Starlette app."""
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def metadata(request: Request) -> Response:
            return JSONResponse(self.metadata())

        async def jwks(request: Request) -> Response:
            if self.outage:
                return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
            headers = {}
            if self.jwks_max_age is not None:
                headers["Cache-Control"] = f"public, max-age={self.jwks_max_age}"
            return JSONResponse(self.jwks(), headers=headers)

        async def introspect(request: Request) -> Response:
            if self.outage:
                return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
            if not self._client_authenticated(request.headers.get("authorization", "")):
                return JSONResponse(
                    {"error": "invalid_client"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="introspection"'},
                )
            body = (await request.body()).decode("utf-8", "replace")
            tokens = parse_qs(body).get("token", [])
            answer = self._opaque.get(tokens[0]) if len(tokens) == 1 else None
            exp = answer.get("exp") if answer is not None else None
            if answer is None or (isinstance(exp, int | float) and self.clock() >= exp):
                answer = {"active": False}
            return JSONResponse(answer, headers={"Cache-Control": "no-store"})

        app = Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", metadata),
                Route("/.well-known/openid-configuration", metadata),
                Route("/jwks.json", jwks),
                Route("/introspect", introspect, methods=["POST"]),
            ]
        )

        async def counting_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.requests[scope["path"]] += 1  # every request, 404s included
            await app(scope, receive, send)

        return counting_app

    def _client_authenticated(self, authorization: str) -> bool:
        try:
            client_id, secret = parse_basic(authorization)
        except InvalidClient:
            return False
        return secrets.compare_digest(
            client_id, self.introspection_client_id
        ) & secrets.compare_digest(secret, self.introspection_client_secret)

    @contextmanager
    def serve(self, *, sock: socket.socket | None = None) -> Iterator[LocalIssuer]:
        """Serve the issuer over HTTP while the block runs: on 127.0.0.1 and a free port, or on
        ``sock`` (a bound socket, see :mod:`tokensmith.testing.ports`), whose
        address then is :attr:`url`."""
        from .server import ThreadedServer

        with ThreadedServer(self.asgi_app(), sock=sock) as server:
            self.url = server.url
            self._server = server
            try:
                yield self
            finally:
                self._server = None
