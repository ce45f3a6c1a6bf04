"""JWKSCache: rotation, rate-limited refetch on unknown kid, Cache-Control, key filtering."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tokensmith.resource import IssuerUnavailableError, JWKSCache, KeyNotFoundError
from tokensmith.resource.jwks import parse_jwks
from tokensmith.testing import LocalIssuer, SigningKey

from .forge import FakeClock


@pytest.fixture
def cache(issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock) -> JWKSCache:
    return JWKSCache(http, issuer.jwks_uri, clock=clock)


async def test_key_found_and_fetched_once(issuer: LocalIssuer, cache: JWKSCache) -> None:
    key = issuer.current_key
    first = await cache.get_key(key.kid, "ES256")
    second = await cache.get_key(key.kid, "ES256")
    assert first is second  # parsed once
    assert issuer.jwks_requests == 1


async def test_key_only_usable_with_its_alg(issuer: LocalIssuer, cache: JWKSCache) -> None:
    with pytest.raises(KeyNotFoundError):
        await cache.get_key(issuer.current_key.kid, "ES384")


async def test_jwks_rotation_new_kid_found_after_one_refetch(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.current_key.kid, "ES256")
    new = issuer.rotate_key()
    clock.advance(31)  # past min_refetch_interval, well within the 300 s max-age
    assert (await cache.get_key(new.kid, "ES256")).key_id == new.kid
    assert issuer.jwks_requests == 2


async def test_jwks_rotation_removed_kid_disappears_after_cache_expiry(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    old = issuer.current_key
    await cache.get_key(old.kid, "ES256")
    issuer.rotate_key(keep_old=False)
    clock.advance(299)
    assert (await cache.get_key(old.kid, "ES256")).key_id == old.kid  # still cached
    clock.advance(2)  # max-age=300 passed
    with pytest.raises(KeyNotFoundError):
        await cache.get_key(old.kid, "ES256")
    assert issuer.jwks_requests == 2


async def test_kid_miss_refetch_rate_limit(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    """W-83: 100 forged kids cost the issuer at most one JWKS request per interval."""
    await cache.get_key(issuer.current_key.kid, "ES256")
    clock.advance(31)
    for n in range(100):
        with pytest.raises(KeyNotFoundError):
            await cache.get_key(f"forged-{n}", "ES256")
    assert issuer.jwks_requests == 2  # the first load plus one refetch
    clock.advance(10)
    for n in range(100):
        with pytest.raises(KeyNotFoundError):
            await cache.get_key(f"forged-again-{n}", "ES256")
    assert issuer.jwks_requests == 2
    clock.advance(25)  # 35 s after the refetch
    with pytest.raises(KeyNotFoundError):
        await cache.get_key("forged-later", "ES256")
    assert issuer.jwks_requests == 3


async def test_kid_miss_refetch_rate_limit_concurrent(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    """Concurrent misses wait for the same fetch instead of each sending one."""
    results = await asyncio.gather(
        *(cache.get_key(f"forged-{n}", "ES256") for n in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, KeyNotFoundError) for r in results)
    assert issuer.jwks_requests == 1


async def test_kid_miss_refetch_rate_limit_through_validator(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = issuer.validator(http, clock=clock)
    await validator.validate(issuer.token())
    clock.advance(60)
    other = SigningKey.generate("ES256")
    for n in range(100):
        token = issuer.token(key=SigningKey(f"forged-{n}", "ES256", other.private_key))
        with pytest.raises(KeyNotFoundError):
            await validator.validate(token)
    assert issuer.jwks_requests == 2


@pytest.mark.parametrize(("max_age", "ttl"), [(60, 60), (3600, 3600), (5, 30), (10**9, 86400)])
async def test_cache_headers_honoured(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock, max_age: int, ttl: int
) -> None:
    """max-age sets the lifetime, bounded to [30 s, 1 day]."""
    issuer.jwks_max_age = max_age
    kid = issuer.current_key.kid
    await cache.get_key(kid, "ES256")
    clock.advance(ttl - 1)
    await cache.get_key(kid, "ES256")
    assert issuer.jwks_requests == 1
    clock.advance(2)
    await cache.get_key(kid, "ES256")
    assert issuer.jwks_requests == 2


async def test_cache_headers_absent_default_ttl(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer.jwks_max_age = None
    cache = JWKSCache(http, issuer.jwks_uri, clock=clock, default_ttl=120)
    kid = issuer.current_key.kid
    await cache.get_key(kid, "ES256")
    clock.advance(119)
    await cache.get_key(kid, "ES256")
    assert issuer.jwks_requests == 1
    clock.advance(2)
    await cache.get_key(kid, "ES256")
    assert issuer.jwks_requests == 2


async def test_kid_less_token_needs_a_single_matching_key(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    assert (await cache.get_key(None, "ES256")).key_id == issuer.current_key.kid
    issuer.add_key("ES256")
    clock.advance(301)
    with pytest.raises(KeyNotFoundError):
        await cache.get_key(None, "ES256")


async def test_unreachable_jwks_is_unavailable(http: httpx.AsyncClient, clock: FakeClock) -> None:
    cache = JWKSCache(http, "http://127.0.0.1:9/jwks.json", clock=clock)
    with pytest.raises(IssuerUnavailableError):
        await cache.get_key("k", "ES256")


def _jwk(**overrides: Any) -> dict[str, Any]:
    jwk = SigningKey.generate("ES256", kid="k").public_jwk()
    jwk.update(overrides)
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "k"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "k", "alg": "HS256", "use": "sig"},
        "use-enc",
        "key-ops-encrypt",
        "alg-hs256",
        "alg-none",
        "alg-mismatch-curve",
        "kid-not-string",
        "broken",
    ],
)
def test_unusable_keys_ignored(jwk: Any) -> None:
    variants = {
        "use-enc": lambda: _jwk(use="enc"),
        "key-ops-encrypt": lambda: _jwk(key_ops=["encrypt"]),
        "alg-hs256": lambda: _jwk(alg="HS256"),
        "alg-none": lambda: _jwk(alg="none"),
        "alg-mismatch-curve": lambda: _jwk(alg="ES512"),
        "kid-not-string": lambda: _jwk(kid=5),
        "broken": lambda: _jwk(x="AAAA"),
    }
    entry = variants[jwk]() if isinstance(jwk, str) else jwk
    assert parse_jwks({"keys": [entry]}) == {}


def test_usable_keys_parsed_with_their_alg() -> None:
    keys = parse_jwks(
        {
            "keys": [
                _jwk(use=None, alg=None),
                SigningKey.generate("EdDSA", kid="ed").public_jwk(),
                SigningKey.generate("PS256", kid="ps").public_jwk(),
                _jwk(kid="ops", key_ops=["verify"]),
            ]
        }
    )
    assert set(keys) == {("k", "ES256"), ("ed", "EdDSA"), ("ps", "PS256"), ("ops", "ES256")}


@pytest.mark.parametrize("document", [[], {"keys": {}}, {"nokeys": []}, "x"])
def test_not_a_jwk_set_refused(document: Any) -> None:
    with pytest.raises(ValueError, match="JWK Set"):
        parse_jwks(document)


async def test_jwks_outage_keeps_previous_keys(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    kid = issuer.current_key.kid
    await cache.get_key(kid, "ES256")
    issuer.outage = True
    clock.advance(301)  # the set expired: a refresh is attempted and fails
    assert (await cache.get_key(kid, "ES256")).key_id == kid
    assert "keeping previous keys" in caplog.text
    for _ in range(50):
        await cache.get_key(kid, "ES256")
    assert issuer.jwks_requests == 2  # the failed refresh is not retried on every request
    clock.advance(31)
    issuer.outage = False
    new = issuer.rotate_key()
    assert (await cache.get_key(new.kid, "ES256")).key_id == new.kid
    assert issuer.jwks_requests == 3


async def test_jwks_outage_before_first_load_is_unavailable(
    issuer: LocalIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    issuer.outage = True
    for _ in range(20):
        with pytest.raises(IssuerUnavailableError):
            await cache.get_key(issuer.current_key.kid, "ES256")
    assert issuer.jwks_requests == 1  # failures are rate-limited too
    clock.advance(31)
    issuer.outage = False
    assert (await cache.get_key(issuer.current_key.kid, "ES256")).key_id


async def test_jwks_outage_concurrent_first_requests_share_one_failure(
    issuer: LocalIssuer, cache: JWKSCache
) -> None:
    issuer.outage = True
    results = await asyncio.gather(
        *(cache.get_key(issuer.current_key.kid, "ES256") for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, IssuerUnavailableError) for r in results)
    assert issuer.jwks_requests == 1
