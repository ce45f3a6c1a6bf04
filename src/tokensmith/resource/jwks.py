"""A cache of an issuer's JSON Web Key Set (RFC 7517) for signature verification.

Rules (security checklist §6.1, W-83):

* each key is parsed once, into a :class:`jwt.PyJWK` bound to exactly one algorithm: the JWK's
  ``alg`` when present, else the one its ``kty``/``crv`` implies (RSA without ``alg`` means RS256);
  a token whose ``alg`` differs from its key's is refused;
* keys with a ``use`` other than ``sig``, ``key_ops`` without ``verify``, symmetric (``oct``) keys
  and HMAC/``none`` algorithms are dropped when the set is loaded;
* the set is kept for the ``Cache-Control: max-age`` of the response, bounded by ``min_ttl`` and
  ``max_ttl`` (``default_ttl`` without a header);
* an unknown ``kid`` triggers at most one refetch per ``min_refetch_interval``, so a flood of
  forged ``kid`` values costs the issuer at most one request per interval;
* when a refetch fails the previous keys stay in use until a later refetch succeeds;
* a fetch has one deadline for the whole exchange (``timeout``, body included) and reads at most
  ``MAX_JWKS_BYTES``: a slow or huge answer fails the fetch instead of holding it
  (:func:`._http.fetch`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
import orjson

from tokensmith.core.clock import Clock, system_clock

from ._http import OutboundError, fetch
from ._util import max_age
from .errors import IssuerUnavailableError, KeyNotFoundError

__all__ = ["ASYMMETRIC_ALGORITHMS", "JWKSCache"]

logger = logging.getLogger("tokensmith.resource")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
MAX_JWKS_BYTES = 512 * 1024
MAX_KEYS = 100


def _usable(jwk: Mapping[str, Any]) -> bool:
    if jwk.get("kty") not in ("EC", "RSA", "OKP"):
        return False  # "oct" (HMAC) and unknown types never verify our tokens
    use = jwk.get("use")
    if use is not None and use != "sig":
        return False
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return False
    kid = jwk.get("kid")
    return kid is None or isinstance(kid, str)


_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _consistent(entry: Mapping[str, Any], key: jwt.PyJWK) -> bool:
    """The declared ``alg`` fits the key: an EC curve signs with one alg only (RFC 7518 §3.4)."""
    alg = key.algorithm_name
    kty = entry.get("kty")
    if alg in _EC_CURVES:
        return kty == "EC" and entry.get("crv") == _EC_CURVES[alg]
    if alg == "EdDSA":
        return kty == "OKP" and entry.get("crv") in ("Ed25519", "Ed448")
    return kty == "RSA"


def parse_jwks(document: Any) -> dict[tuple[str | None, str], jwt.PyJWK]:
    """The usable verification keys of a JWKS document, by ``(kid, alg)``."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
    for entry in document["keys"][:MAX_KEYS]:
        if not isinstance(entry, dict) or not _usable(entry):
            continue
        alg = entry.get("alg")
        if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if key.algorithm_name not in ASYMMETRIC_ALGORITHMS or not _consistent(entry, key):
            continue
        keys.setdefault((entry.get("kid"), key.algorithm_name), key)
    return keys


class JWKSCache:
    """The verification keys published at ``jwks_uri``, fetched lazily and cached.

    ``get_key(kid, alg)`` returns the key for a token's ``kid`` and ``alg`` or raises
    :class:`KeyNotFoundError`; :class:`IssuerUnavailableError` when the set was never loaded.
    ``clock`` returns seconds (``time.time`` by default); inject one in tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        jwks_uri: str,
        *,
        min_refetch_interval: float = 30.0,
        default_ttl: float = 300.0,
        min_ttl: float = 30.0,
        max_ttl: float = 86400.0,
        timeout: float = 5.0,
        clock: Clock = system_clock,
    ) -> None:
        self._http = http
        self.jwks_uri = jwks_uri
        self._min_refetch_interval = min_refetch_interval
        self._default_ttl = default_ttl
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._timeout = timeout
        self._clock = clock
        self._keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._loaded = False
        self._expires_at = float("-inf")
        self._last_attempt = float("-inf")
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def fetch_count(self) -> int:
        """How many times the set was requested from the issuer (successfully or not)."""
        return self._generation

    def key_ids(self) -> frozenset[str | None]:
        """The ``kid`` of every usable key currently cached."""
        return frozenset(kid for kid, _ in self._keys)

    async def get_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key for ``kid`` usable with ``alg`` (a ``kid``-less token needs a single match)."""
        now = self._clock()
        if now < self._expires_at:
            key = self._find(kid, alg)
            if key is not None:
                return key
            if now - self._last_attempt < self._min_refetch_interval:
                raise KeyNotFoundError(f"no key kid={kid!r} alg={alg!r} (refetch rate-limited)")
        await self._refresh(now)
        key = self._find(kid, alg)
        if key is None:
            raise KeyNotFoundError(f"no key kid={kid!r} alg={alg!r} in {self.jwks_uri}")
        return key

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get((kid, alg))
        candidates = [key for (_, key_alg), key in self._keys.items() if key_alg == alg]
        return candidates[0] if len(candidates) == 1 else None

    async def _refresh(self, now: float) -> None:
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                # another task fetched while we waited for the lock: share its outcome
                if not self._loaded:
                    raise IssuerUnavailableError(f"JWKS {self.jwks_uri}: fetch failed")
                return
            recent = now - self._last_attempt < self._min_refetch_interval
            if recent and not self._loaded:
                raise IssuerUnavailableError(f"JWKS {self.jwks_uri}: last fetch failed")
            if recent and now < self._expires_at:
                return
            self._last_attempt = now
            self._generation += 1
            try:
                await self._fetch(now)
            except IssuerUnavailableError as exc:
                if not self._loaded:
                    raise
                # keep serving the previous keys; try again after min_refetch_interval
                logger.warning("JWKS refresh failed, keeping previous keys: %s", exc.detail)
                self._expires_at = max(self._expires_at, now + self._min_refetch_interval)

    async def _fetch(self, now: float) -> None:
        try:
            response = await fetch(
                self._http,
                "GET",
                self.jwks_uri,
                deadline=self._timeout,
                max_bytes=MAX_JWKS_BYTES,
                headers={"Accept": "application/json"},
            )
        except OutboundError as exc:
            raise IssuerUnavailableError(f"JWKS {exc.detail}") from exc
        if response.status_code != 200:
            raise IssuerUnavailableError(f"JWKS {self.jwks_uri}: HTTP {response.status_code}")
        try:
            keys = parse_jwks(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise IssuerUnavailableError(f"JWKS {self.jwks_uri}: {exc}") from exc
        ttl = max_age(response.headers.get("cache-control"))
        ttl = self._default_ttl if ttl is None else ttl
        ttl = min(max(ttl, self._min_ttl), self._max_ttl)
        self._keys = keys
        self._loaded = True
        self._expires_at = now + ttl
        logger.debug("JWKS %s loaded: %d keys, ttl %.0fs", self.jwks_uri, len(keys), ttl)
