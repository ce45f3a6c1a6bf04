"""Validation of JWT access tokens at a resource server (RFC 9068, RFC 8725, RFC 7515/7519).

The checks, in order (each one has a negative test named after it):

1. size: tokens longer than ``max_token_bytes`` are refused before any decoding (V-07, W-77);
2. shape: three base64url segments, a JSON-object header, ``alg`` a string in the allow-list
   (``none`` and ``HS*`` are never allowed, RFC 8725 §3.1-3.2, V-01/V-05/V-15, W-83);
3. ``crit``: refused whatever it lists, we understand no extension (RFC 7515 §4.1.11, V-06/V-17);
4. ``jku``, ``x5u``, ``jwk``, ``x5c`` are ignored: keys only come from the configured issuer's
   JWKS (V-09);
5. the key: from :class:`JWKSCache` by ``kid`` and ``alg``; a key only verifies its own ``alg``;
6. signature: PyJWT's JWS verification with that single key and algorithm;
7. ``typ``: ``at+jwt`` / ``application/at+jwt`` by default (RFC 9068 §4; an ID token with
   ``typ: JWT`` is refused, W-81, RFC 8725 §3.11);
8. ``iss``: a string, byte-for-byte equal to the issuer (V-13, V-16);
9. ``aud``: a string or a list of strings containing our audience (RFC 9068 §4, BCP-19);
10. ``exp`` required, ``nbf`` if present, ``iat`` not in the future beyond ``leeway`` (W-84);
11. ``sub`` a string; ``client_id`` a string if present; ``scope`` a space-separated string;
12. kind: a JWT carrying a claim that only other kinds of JWT carry is refused whatever its
    ``typ`` (:data:`NOT_ACCESS_TOKEN_CLAIMS`): ``events`` marks a Security Event Token such as a
    back-channel logout token (RFC 8417 §2.2, OpenID Connect Back-Channel Logout §2.4),
    ``at_hash``/``c_hash``/``s_hash`` an ID token (OpenID Connect Core §3.1.3.6, §3.3.2.11,
    FAPI 1.0 §5.1). This is what still tells them apart with ``typ=None`` or ``typ="JWT"``
    (RFC 8725 §3.12: explicit typing is the first defence, mutually exclusive claims the second).

Verified tokens are remembered in a :class:`VerifiedTokenCache` keyed by their BLAKE2b-256 digest;
a hit skips 1-9, 11 and 12 (they depend only on the token's bytes and our configuration) and the
part of 10 that cannot change: ``exp`` is held by the cache (an entry is evicted at it), ``nbf``
is checked again (a clock set back), ``iat`` is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Any

import httpx
import jwt
import orjson
from jwt.api_jws import PyJWS
from jwt.exceptions import DecodeError

from tokensmith.core.clock import Clock, system_clock
from tokensmith.core.jose import b64url_decode
from tokensmith.core.scopes import scope_claim

from ._util import is_number, token_digest, token_fingerprint
from .cache import VerifiedTokenCache
from .discovery import discover
from .errors import InvalidTokenError, IssuerUnavailableError
from .jwks import ASYMMETRIC_ALGORITHMS, JWKSCache
from .principal import Principal

__all__ = ["DEFAULT_ALGORITHMS", "DEFAULT_TYP", "NOT_ACCESS_TOKEN_CLAIMS", "TokenValidator"]

logger = logging.getLogger("tokensmith.resource")

DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "EdDSA", "RS256", "PS256")
DEFAULT_TYP: tuple[str, ...] = ("at+jwt", "application/at+jwt")
NOT_ACCESS_TOKEN_CLAIMS: tuple[str, ...] = ("events", "at_hash", "c_hash", "s_hash")
"""Claims no RFC 9068 access token carries: a JWT with one of them is another kind of token."""
DISCOVERY_RETRY_INTERVAL = 10.0


def _b64url_decode(segment: bytes, name: str = "segment") -> bytes:
    """Strict base64url (RFC 7515 §2, :func:`tokensmith.core.jose.b64url_decode`), failing as
    PyJWT's ``PyJWS._decode_base64url_segment`` does."""
    try:
        return b64url_decode(segment)
    except ValueError:
        raise DecodeError(f"Invalid {name} padding") from None


class _StrictJWS(PyJWS):
    """PyJWT's JWS verification with the faster, equally strict segment decoder above.

    If a PyJWT release renames the hook, PyJWT's own decoder runs instead: slower, not weaker.
    """

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        return _b64url_decode(segment, name)


_JWS = _StrictJWS(options={"verify_signature": True, "enforce_minimum_key_length": True})


class TokenValidator:
    """Validates JWT access tokens from one issuer for one audience.

    ``issuer`` is always required: it is compared with ``iss``. The keys come from ``jwks_uri``
    when given, otherwise from the issuer's metadata (RFC 8414, then OpenID Connect Discovery).
    Pass ``jwks`` to share a :class:`JWKSCache`. ``typ=None`` accepts any ``typ`` (only for
    issuers that do not type their access tokens; then make sure the audience is exclusive).
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        issuer: str,
        audience: str,
        jwks_uri: str | None = None,
        jwks: JWKSCache | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        typ: str | Sequence[str] | None = DEFAULT_TYP,
        leeway: float = 30.0,
        max_iat_future: float | None = None,
        max_token_bytes: int = 8192,
        verified_cache_size: int = 10_000,
        clock: Clock = system_clock,
    ) -> None:
        algs = tuple(algorithms)
        refused = [alg for alg in algs if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not algs:
            raise ValueError(f"only asymmetric signature algorithms can be allowed, not {refused}")
        if not issuer:
            raise ValueError("issuer is required")
        if not audience:
            raise ValueError("audience is required")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algs)
        if typ is None:
            self.typ: frozenset[str] | None = None
        elif isinstance(typ, str):
            self.typ = frozenset({typ.lower()})
        else:
            self.typ = frozenset(t.lower() for t in typ)
        self.leeway = leeway
        self.max_iat_future = leeway if max_iat_future is None else max_iat_future
        self.max_token_bytes = max_token_bytes
        self._http = http
        self._clock = clock
        self._jwks_uri = jwks_uri
        self._jwks = jwks
        if jwks is None and jwks_uri is not None:
            self._jwks = JWKSCache(http, jwks_uri, clock=clock)
        self._cache = VerifiedTokenCache(verified_cache_size)
        self._discovery_lock = asyncio.Lock()
        self._discovery_failed_at = float("-inf")

    @property
    def verified_cache(self) -> VerifiedTokenCache:
        return self._cache

    async def jwks(self) -> JWKSCache:
        """The key cache, discovering the issuer's ``jwks_uri`` on first use.

        Concurrent first requests share one discovery; after a failure, requests fail fast for
        ``DISCOVERY_RETRY_INTERVAL`` seconds instead of each asking the issuer again.
        """
        async with self._discovery_lock:
            if self._jwks is not None:
                return self._jwks
            now = self._clock()
            if now - self._discovery_failed_at < DISCOVERY_RETRY_INTERVAL:
                raise IssuerUnavailableError(f"discovery of {self.issuer} failed recently")
            try:
                metadata = await discover(self._http, self.issuer)
                if metadata.jwks_uri is None:
                    raise IssuerUnavailableError(f"metadata of {self.issuer} has no jwks_uri")
            except IssuerUnavailableError:
                self._discovery_failed_at = now
                raise
            self._jwks = JWKSCache(self._http, metadata.jwks_uri, clock=self._clock)
            return self._jwks

    async def validate(self, token: str) -> Principal:
        """The :class:`Principal` of a valid token; :class:`InvalidTokenError` otherwise."""
        now = self._clock()
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError(f"token of {len(token)} bytes exceeds {self.max_token_bytes}")
        digest = token_digest(token)
        hit = self._cache.get(digest, now)
        if hit is not None:
            # a hit is before its exp (the cache evicts it there; the comparison with exp only
            # guards that) and its nbf was met when it was stored: only a token with an nbf (a
            # clock set back) needs the full check (one call less on every reused token)
            if hit.not_before is not None or now >= hit.expires_at + self.leeway:
                self._check_times(hit.expires_at, hit.not_before, None, now)
            return hit.principal
        header = self._read_header(token)
        alg: str = header["alg"]
        kid = header.get("kid")
        jwks = self._jwks if self._jwks is not None else await self.jwks()
        key = await jwks.get_key(kid, alg)
        try:
            decoded = _JWS.decode_complete(token, key=key, algorithms=[alg])
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"JWS rejected: {exc}") from None
        try:
            claims = orjson.loads(decoded["payload"])
        except orjson.JSONDecodeError:
            raise InvalidTokenError("payload is not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("payload is not a JSON object")
        principal = self._check_claims(claims, now)
        self._cache.put(
            digest, principal, expires_at=claims["exp"], not_before=claims.get("nbf"), now=now
        )
        logger.debug("token %s valid for sub=%s", token_fingerprint(token), principal.subject)
        return principal

    def _read_header(self, token: str) -> dict[str, Any]:
        if not token.isascii() or token.count(".") != 2:
            raise InvalidTokenError("not a compact JWS")
        try:
            header = orjson.loads(_b64url_decode(token[: token.index(".")].encode("ascii")))
        except (DecodeError, ValueError):
            raise InvalidTokenError("header is not base64url JSON") from None
        if not isinstance(header, dict):
            raise InvalidTokenError("header is not a JSON object")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidTokenError(f"alg {alg!r} not allowed")
        if "crit" in header:
            raise InvalidTokenError(f"unsupported critical header {header['crit']!r}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("kid is not a string")
        if self.typ is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in self.typ:
                raise InvalidTokenError(f"typ {typ!r} is not an access token type")
        return header

    def _check_times(self, exp: float, nbf: float | None, iat: float | None, now: float) -> None:
        if now >= exp + self.leeway:
            raise InvalidTokenError("token expired")
        if nbf is not None and now + self.leeway < nbf:
            raise InvalidTokenError("token not yet valid (nbf)")
        if iat is not None and iat > now + self.max_iat_future:
            raise InvalidTokenError("token issued in the future (iat)")

    def _check_claims(self, claims: dict[str, Any], now: float) -> Principal:
        if claims.get("iss") != self.issuer or not isinstance(claims.get("iss"), str):
            raise InvalidTokenError(f"iss {claims.get('iss')!r} is not {self.issuer!r}")
        aud = claims.get("aud")
        if isinstance(aud, str):
            audience_ok = aud == self.audience
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            audience_ok = self.audience in aud
        else:
            audience_ok = False
        if not audience_ok:
            raise InvalidTokenError(f"aud {aud!r} does not include {self.audience!r}")
        exp = claims.get("exp")
        if not is_number(exp):
            raise InvalidTokenError("exp missing or not a number")
        nbf = claims.get("nbf")
        if nbf is not None and not is_number(nbf):
            raise InvalidTokenError("nbf is not a number")
        iat = claims.get("iat")
        if iat is not None and not is_number(iat):
            raise InvalidTokenError("iat is not a number")
        self._check_times(exp, nbf, iat, now)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("sub missing or not a string")
        client_id = claims.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise InvalidTokenError("client_id is not a string")
        scopes = scope_claim(claims.get("scope"))
        if scopes is None:
            raise InvalidTokenError("scope is not a string")
        foreign = [name for name in NOT_ACCESS_TOKEN_CLAIMS if name in claims]
        if foreign:
            raise InvalidTokenError(f"claims {foreign} mark a JWT that is not an access token")
        return Principal(
            subject=sub,
            client_id=client_id,
            scopes=scopes,
            claims=MappingProxyType(claims),
            token_type="jwt",
            issuer=self.issuer,
            expires_at=float(exp),
        )
