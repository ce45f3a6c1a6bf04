"""Validation of opaque access tokens by token introspection (RFC 7662).

The resource server authenticates to the introspection endpoint as a client with
``client_secret_basic`` (RFC 6749 §2.3.1: id and secret are form-urlencoded before base64).
Only ``"active": true`` (the JSON boolean) is accepted; then ``exp``/``nbf`` are checked against
our clock, ``iss`` when present must be the issuer, and ``aud`` must name our audience when an
audience is configured (BCP-19).

Only access tokens are accepted: an active refresh token (an authorization server answers
``"token_type": "refresh_token"`` to the client that owns it, RFC 7662 §2.2) is not a credential
for a protected resource (RFC 6749 §1.5, RFC 6750 §1). ``token_type`` absent, or one of
:data:`ACCESS_TOKEN_TYPES` (case-insensitive, RFC 6749 §5.1), passes; anything else is
``invalid_token``. ``DPoP`` is not among them: a DPoP-bound token sent as a bearer token is
refused (RFC 9449 §7.1).

Answers are cached by the token's BLAKE2b-256 digest for at most ``cache_ttl`` seconds and never
beyond the token's ``exp``; a revocation is therefore seen after at most ``cache_ttl``. Inactive
answers are cached too (for ``negative_cache_ttl``), so garbage tokens do not each cost a request.
"""

from __future__ import annotations

import base64
import logging
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import Clock, system_clock
from tokensmith.core.scopes import scope_claim

from ._http import OutboundError, fetch
from ._util import is_number, token_digest, token_fingerprint
from .discovery import discover
from .errors import InvalidTokenError, IssuerUnavailableError
from .principal import Principal

__all__ = ["ACCESS_TOKEN_TYPES", "IntrospectionValidator"]

ACCESS_TOKEN_TYPES: frozenset[str] = frozenset(
    {
        "bearer",  # RFC 6750, what RFC 7662 §2.2 servers usually send
        "access_token",  # the token_type_hint name (RFC 7009 §2.1), sent by some servers
        "urn:ietf:params:oauth:token-type:access_token",  # RFC 8693 §3
    }
)
"""The introspection ``token_type`` values (lower-cased) of an access token."""

logger = logging.getLogger("tokensmith.resource")

MAX_RESPONSE_BYTES = 64 * 1024


class IntrospectionValidator:
    """Validates tokens by asking the authorization server (RFC 7662).

    Give ``introspection_endpoint``, or ``issuer`` alone to discover it (RFC 8414).
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        issuer: str | None = None,
        introspection_endpoint: str | None = None,
        audience: str | None = None,
        cache_ttl: float = 60.0,
        negative_cache_ttl: float = 10.0,
        max_cache_entries: int = 10_000,
        max_token_bytes: int = 8192,
        leeway: float = 30.0,
        timeout: float = 5.0,
        clock: Clock = system_clock,
    ) -> None:
        if issuer is None and introspection_endpoint is None:
            raise ValueError("give issuer or introspection_endpoint")
        self.issuer = issuer
        self.audience = audience
        self._http = http
        self._endpoint = introspection_endpoint
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._cache_ttl = cache_ttl
        self._negative_cache_ttl = negative_cache_ttl
        self._max_token_bytes = max_token_bytes
        self._leeway = leeway
        self._timeout = httpx.Timeout(timeout)
        self._clock = clock
        # digest -> principal, or None for an inactive token
        self._cache: TTLCache[Principal | None] = TTLCache(max_entries=max_cache_entries)

    def __repr__(self) -> str:
        return f"IntrospectionValidator(endpoint={self._endpoint!r})"

    async def endpoint(self) -> str:
        if self._endpoint is None:
            if self.issuer is None:  # pragma: no cover - excluded by __init__
                raise IssuerUnavailableError("no issuer to discover")
            metadata = await discover(self._http, self.issuer)
            if metadata.introspection_endpoint is None:
                raise IssuerUnavailableError(f"{self.issuer} has no introspection_endpoint")
            self._endpoint = metadata.introspection_endpoint
        return self._endpoint

    async def validate(self, token: str) -> Principal:
        now = self._clock()
        if len(token) > self._max_token_bytes:
            raise InvalidTokenError(f"token of {len(token)} bytes exceeds {self._max_token_bytes}")
        digest = token_digest(token)
        cached = self._cache.lookup(digest, now)
        if cached is not None:
            if cached.value is None:
                raise InvalidTokenError("token inactive (cached)")
            self._check_times(cached.value.claims, now)
            return cached.value
        answer = await self._introspect(token)
        try:
            principal = self._principal(answer, now)
        except InvalidTokenError:
            self._cache.put(digest, None, evict_at=now + self._negative_cache_ttl)
            raise
        evict_at = now + self._cache_ttl
        if principal.expires_at is not None:
            evict_at = min(evict_at, principal.expires_at)
        self._cache.put(digest, principal, evict_at=evict_at)
        logger.debug("token %s active for sub=%s", token_fingerprint(token), principal.subject)
        return principal

    async def _introspect(self, token: str) -> dict[str, Any]:
        endpoint = await self.endpoint()
        try:
            # one deadline for the whole call, body read at most MAX_RESPONSE_BYTES (._http)
            response = await fetch(
                self._http,
                "POST",
                endpoint,
                deadline=self._timeout.read or 5.0,
                max_bytes=MAX_RESPONSE_BYTES,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": self._authorization, "Accept": "application/json"},
            )
        except OutboundError as exc:
            raise IssuerUnavailableError(f"introspection: {exc.detail}") from exc
        if response.status_code != 200:
            raise IssuerUnavailableError(f"introspection: HTTP {response.status_code}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise IssuerUnavailableError("introspection: response is not JSON") from exc
        if not isinstance(answer, dict):
            raise IssuerUnavailableError("introspection: response is not a JSON object")
        return answer

    def _check_times(self, claims: Any, now: float) -> None:
        exp = claims.get("exp")
        if exp is not None and now >= exp + self._leeway:
            raise InvalidTokenError("token expired")
        nbf = claims.get("nbf")
        if nbf is not None and now + self._leeway < nbf:
            raise InvalidTokenError("token not yet valid (nbf)")

    def _principal(self, answer: dict[str, Any], now: float) -> Principal:
        if answer.get("active") is not True:
            raise InvalidTokenError("token inactive")
        if "token_type" in answer:
            token_type = answer["token_type"]
            if not isinstance(token_type, str) or token_type.lower() not in ACCESS_TOKEN_TYPES:
                raise InvalidTokenError(f"token_type {token_type!r} is not an access token")
        for name in ("exp", "nbf", "iat"):
            if name in answer and not is_number(answer[name]):
                raise InvalidTokenError(f"{name} is not a number")
        self._check_times(answer, now)
        iss = answer.get("iss")
        if iss is not None and self.issuer is not None and iss != self.issuer:
            raise InvalidTokenError(f"iss {iss!r} is not {self.issuer!r}")
        if self.audience is not None:
            aud = answer.get("aud")
            ok = aud == self.audience or (
                isinstance(aud, list)
                and all(isinstance(a, str) for a in aud)
                and self.audience in aud
            )
            if not ok:
                raise InvalidTokenError(f"aud {aud!r} does not include {self.audience!r}")
        client_id = answer.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise InvalidTokenError("client_id is not a string")
        sub = answer.get("sub", client_id)
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("neither sub nor client_id")
        scopes = scope_claim(answer.get("scope"))
        if scopes is None:
            raise InvalidTokenError("scope is not a string")
        exp = answer.get("exp")
        return Principal(
            subject=sub,
            client_id=client_id,
            scopes=scopes,
            claims=MappingProxyType(answer),
            token_type="opaque",
            issuer=iss if isinstance(iss, str) else self.issuer,
            expires_at=float(exp) if exp is not None else None,
        )
