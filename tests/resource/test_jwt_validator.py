"""TokenValidator: one negative test per rule (security checklist BCP-19, W-81..W-84, V-01..V-17).

Every forged token is built by ``forge`` (cryptography + base64url), never by product code.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tokensmith.resource import (
    InvalidTokenError,
    IssuerUnavailableError,
    KeyNotFoundError,
    Principal,
    TokenValidator,
)
from tokensmith.testing import LocalIssuer, SigningKey, ThreadedServer

from .forge import FakeClock, b64url, forge


async def test_valid_token_gives_principal(issuer: LocalIssuer, validator: TokenValidator) -> None:
    token = issuer.token(sub="alice", scopes=["docs:read", "docs:write"], client_id="spa")
    principal = await validator.validate(token)
    assert principal.subject == "alice"
    assert principal.client_id == "spa"
    assert principal.scopes == frozenset({"docs:read", "docs:write"})
    assert principal.token_type == "jwt"
    assert principal.issuer == issuer.url
    assert principal.claims["aud"] == issuer.default_audience
    assert not principal.is_client


async def test_principal_is_frozen_and_slotted(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    principal = await validator.validate(issuer.token())
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.subject = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        principal.claims["sub"] = "mallory"  # type: ignore[index]
    assert not hasattr(principal, "__dict__")


async def test_client_credentials_token_is_client(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    principal = await validator.validate(issuer.client_token(client_id="batch", scopes=["x"]))
    assert principal.is_client
    assert principal.subject == "batch"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
async def test_other_asymmetric_algorithms_accepted(
    issuer: LocalIssuer, validator: TokenValidator, alg: str
) -> None:
    issuer.rotate_key(alg)
    principal = await validator.validate(issuer.token(sub="bob"))
    assert principal.subject == "bob"


async def test_wrong_signature_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    other = SigningKey.generate("ES256")
    token = forge(header, claims, other.private_key)
    with pytest.raises(InvalidTokenError, match="JWS rejected"):
        await validator.validate(token)
    # the same claims signed with the right key pass: the forge itself is sound
    assert (await validator.validate(forge(header, claims, issuer.current_key.private_key))).subject


async def test_wrong_signature_foreign_key_token_refused(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    with pytest.raises(InvalidTokenError):
        await validator.validate(issuer.foreign_key_token())


async def test_tampered_payload_refused(
    issuer: LocalIssuer, validator: TokenValidator, claims: dict[str, Any]
) -> None:
    token = issuer.sign(claims)
    head, _, signature = token.split(".")
    claims["scope"] = "docs:read docs:admin"
    tampered = f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(InvalidTokenError):
        await validator.validate(tampered)


async def test_unknown_kid_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    header["kid"] = "not-a-kid"
    with pytest.raises(KeyNotFoundError):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


@pytest.mark.parametrize("kid", ["../../dev/null", "' OR 1=1 --", "", "\u0000"])
async def test_hostile_kid_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    kid: str,
) -> None:
    header["kid"] = kid
    with pytest.raises(KeyNotFoundError):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_kid_not_a_string_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    header["kid"] = ["x"]
    with pytest.raises(InvalidTokenError, match="kid"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
) -> None:
    header["alg"] = alg
    with pytest.raises(InvalidTokenError, match="not allowed"):
        await validator.validate(forge(header, claims))
    assert issuer.jwks_requests == 0  # refused before any key lookup


async def test_empty_signature_refused(
    validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    with pytest.raises(InvalidTokenError):
        await validator.validate(forge(header, claims, signature=b""))


def _public_key_encodings(key: SigningKey) -> dict[str, bytes]:
    public = key.private_key.public_key()
    return {
        "jwk-json": json.dumps(key.public_jwk()).encode(),
        "pem-spki": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der-spki": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("encoding", ["jwk-json", "pem-spki", "der-spki", "openssh"])
async def test_hs256_signed_with_public_key_bytes_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
    encoding: str,
) -> None:
    secret = _public_key_encodings(issuer.current_key)[encoding]
    header["alg"] = alg
    with pytest.raises(InvalidTokenError, match="not allowed"):
        await validator.validate(forge(header, claims, secret))


async def test_hs256_signed_with_pkcs1_rsa_public_key_refused(
    issuer: LocalIssuer, validator: TokenValidator, claims: dict[str, Any]
) -> None:
    key = issuer.rotate_key("RS256")
    pkcs1 = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    token = forge({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims, pkcs1)
    with pytest.raises(InvalidTokenError):
        await validator.validate(token)


@pytest.mark.parametrize("algs", [["HS256"], ["ES256", "none"], ["ES256", "HS512"], []])
def test_symmetric_or_none_algorithms_cannot_be_allowed(
    http: httpx.AsyncClient, algs: list[str]
) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        TokenValidator(http=http, issuer="https://as", audience="api", algorithms=algs)


async def test_alg_outside_allow_list_refused(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = issuer.validator(http, clock=clock, algorithms=["EdDSA"])
    with pytest.raises(InvalidTokenError, match="not allowed"):
        await validator.validate(issuer.token())


async def test_key_used_only_with_its_own_alg(
    issuer: LocalIssuer, validator: TokenValidator, claims: dict[str, Any]
) -> None:
    """An RS256 key cannot verify a PS256 signature made with the same RSA key."""
    key = issuer.rotate_key("RS256")
    token = forge({"alg": "PS256", "typ": "at+jwt", "kid": key.kid}, claims, key.private_key)
    with pytest.raises(KeyNotFoundError):
        await validator.validate(token)
    good = forge({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key.private_key)
    assert (await validator.validate(good)).subject == "alice"


@pytest.mark.parametrize(
    "iss_variant",
    ["prefix", "superstring", "trailing-slash", "upper-case", "list", "missing"],
)
async def test_wrong_iss_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    iss_variant: str,
) -> None:
    url = issuer.url
    claims["iss"] = {
        "prefix": url[:-1],
        "superstring": url + ".evil",
        "trailing-slash": url + "/",
        "upper-case": url.upper(),
        "list": ["https://evil.example", url],
        "missing": None,
    }[iss_variant]
    if claims["iss"] is None:
        del claims["iss"]
    with pytest.raises(InvalidTokenError, match="iss"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_wrong_aud_refused(issuer: LocalIssuer, validator: TokenValidator) -> None:
    with pytest.raises(InvalidTokenError, match="aud"):
        await validator.validate(issuer.token(audience="https://other.example"))


@pytest.mark.parametrize("aud", [None, [], ["https://other.example"], [1, 2], 7])
async def test_missing_or_malformed_aud_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    aud: Any,
) -> None:
    claims["aud"] = aud
    if aud is None:
        del claims["aud"]
    with pytest.raises(InvalidTokenError, match="aud"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_aud_list_containing_ours_accepted(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    token = issuer.token(audience=["https://other.example", issuer.default_audience])
    assert (await validator.validate(token)).subject == "alice"


async def test_expired_refused(issuer: LocalIssuer, validator: TokenValidator) -> None:
    with pytest.raises(InvalidTokenError, match="expired"):
        await validator.validate(issuer.expired_token())


async def test_expired_within_leeway_accepted_then_refused(
    issuer: LocalIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    token = issuer.token(expires_in=60)
    clock.advance(60 + 29)
    assert (await validator.validate(token)).subject == "alice"
    clock.advance(2)
    with pytest.raises(InvalidTokenError, match="expired"):
        await validator.validate(token)


async def test_not_yet_valid_nbf_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    clock: FakeClock,
) -> None:
    claims["nbf"] = int(clock() + 120)
    token = forge(header, claims, issuer.current_key.private_key)
    with pytest.raises(InvalidTokenError, match="nbf"):
        await validator.validate(token)
    clock.advance(100)  # within the 30 s leeway of nbf
    assert (await validator.validate(token)).subject == "alice"


async def test_iat_far_future_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    clock: FakeClock,
) -> None:
    claims["iat"] = int(clock() + 3600)
    claims["exp"] = int(clock() + 7200)
    with pytest.raises(InvalidTokenError, match="iat"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
async def test_time_claim_not_a_number_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    name: str,
) -> None:
    claims[name] = str(claims.get("exp"))
    with pytest.raises(InvalidTokenError, match=name):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_missing_exp_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    del claims["exp"]
    with pytest.raises(InvalidTokenError, match="exp"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_wrong_typ_id_token_refused(issuer: LocalIssuer, validator: TokenValidator) -> None:
    """W-81: an ID token (typ JWT) is not an access token, even with our audience."""
    with pytest.raises(InvalidTokenError, match="typ"):
        await validator.validate(issuer.id_token())
    with pytest.raises(InvalidTokenError, match="typ"):
        await validator.validate(issuer.token(typ="JWT"))


@pytest.mark.parametrize("typ", [None, "logout+jwt", "dpop+jwt", "JWT", "at+jwt+x"])
async def test_wrong_typ_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    typ: str | None,
) -> None:
    header["typ"] = typ
    if typ is None:
        del header["typ"]
    with pytest.raises(InvalidTokenError, match="typ"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_typ_media_type_form_accepted(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    header["typ"] = "application/AT+JWT"
    assert (await validator.validate(forge(header, claims, issuer.current_key.private_key))).scopes


async def test_typ_configurable_for_issuers_using_jwt(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = issuer.validator(http, clock=clock, typ="JWT")
    assert (await validator.validate(issuer.token(typ="JWT"))).subject == "alice"
    with pytest.raises(InvalidTokenError, match="typ"):
        await validator.validate(issuer.token())


@pytest.mark.parametrize(
    "marker",
    [
        {"events": {"http://schemas.openid.net/event/backchannel-logout": {}}},
        {"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"},
        {"c_hash": "LDktKdoQak3Pk0cnXxCltA"},
        {"s_hash": "lvQ2yRHSLJ1eVlCmHUK8gg"},
    ],
    ids=["events", "at_hash", "c_hash", "s_hash"],
)
@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt"])
async def test_jwts_of_other_kinds_refused_whatever_their_typ(
    issuer: LocalIssuer,
    http: httpx.AsyncClient,
    clock: FakeClock,
    marker: dict[str, Any],
    typ: str | None,
) -> None:
    """A logout token (``events``) or an ID token (``at_hash``/``c_hash``/``s_hash``) is not an
    access token, even where ``typ`` cannot tell (``typ=None`` or ``typ="JWT"``): RFC 8725 §3.12
    mutually exclusive claims, OpenID Connect Back-Channel Logout 1.0 §2.4."""
    validator = issuer.validator(http, clock=clock, typ=None)
    assert (await validator.validate(issuer.token(typ=typ))).subject == "alice"
    with pytest.raises(InvalidTokenError, match="not an access token"):
        await validator.validate(issuer.token(typ=typ, extra=marker))


@pytest.mark.parametrize("name", ["sub", "client_id"])
async def test_sub_or_client_id_not_a_string_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    name: str,
) -> None:
    claims[name] = ["alice", "admin"]
    with pytest.raises(InvalidTokenError, match=name):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_missing_sub_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    del claims["sub"]
    with pytest.raises(InvalidTokenError, match="sub"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


async def test_scope_not_a_string_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    claims["scope"] = ["docs:admin"]
    with pytest.raises(InvalidTokenError, match="scope"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


@pytest.mark.parametrize("crit", [["exp_ext"], ["b64"], ["kid"], ["absent"], [], "exp_ext"])
async def test_unknown_crit_refused(
    issuer: LocalIssuer,
    validator: TokenValidator,
    header: dict[str, Any],
    claims: dict[str, Any],
    crit: Any,
) -> None:
    header.update({"crit": crit, "exp_ext": 1})
    with pytest.raises(InvalidTokenError, match="critical"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


@pytest.mark.parametrize("where", ["jwk", "jku", "x5u", "x5c"])
async def test_embedded_key_headers_ignored(
    issuer: LocalIssuer, validator: TokenValidator, claims: dict[str, Any], where: str
) -> None:
    """V-09: a self-signed token pointing at or embedding the attacker's key is refused."""
    attacker = SigningKey.generate("ES256", kid="attacker")
    header: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid}
    header[where] = {
        "jwk": attacker.public_jwk(),
        "jku": "http://127.0.0.1:9/jwks.json",
        "x5u": "http://127.0.0.1:9/cert.pem",
        "x5c": ["MIIB"],
    }[where]
    with pytest.raises(KeyNotFoundError):
        await validator.validate(forge(header, claims, attacker.private_key))
    # same kid as the issuer's key: the signature check fails instead
    header["kid"] = issuer.current_key.kid
    with pytest.raises(InvalidTokenError, match="JWS rejected"):
        await validator.validate(forge(header, claims, attacker.private_key))


async def test_oversized_token_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    claims["padding"] = "x" * 9000
    with pytest.raises(InvalidTokenError, match="exceeds"):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))
    assert sum(issuer.requests.values()) == 0  # refused before any I/O


async def test_oversized_header_segment_refused_fast(
    issuer: LocalIssuer, validator: TokenValidator, claims: dict[str, Any]
) -> None:
    huge = {"alg": "ES256", "typ": "at+jwt", "kid": "k", "x": "A" * 1_000_000}
    with pytest.raises(InvalidTokenError, match="exceeds"):
        await validator.validate(forge(huge, claims, issuer.current_key.private_key))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        "e30.e30.",  # header without alg
        "W10.e30.",  # header is a JSON list
        "eyJhbGciOiJFUzI1NiJ9.e30.\u00e9",
    ],
)
async def test_malformed_token_refused(validator: TokenValidator, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        await validator.validate(token)


async def test_payload_not_an_object_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any]
) -> None:
    with pytest.raises(InvalidTokenError, match="payload"):
        await validator.validate(forge(header, b"[1,2]", issuer.current_key.private_key))


async def test_cached_token_still_expires(
    issuer: LocalIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    token = issuer.token(expires_in=120)
    await validator.validate(token)
    assert len(validator.verified_cache) == 1
    assert (await validator.validate(token)).subject == "alice"  # cache hit
    clock.advance(120 + 31)
    with pytest.raises(InvalidTokenError, match="expired"):
        await validator.validate(token)


async def test_cached_token_with_nbf_refused_when_the_clock_goes_back(
    issuer: LocalIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    """A reused token skips the signature, not its ``nbf``: the clock set back (an NTP step)
    past the leeway makes a cached token not yet valid again, as an uncached one would be."""
    token = issuer.token(extra={"nbf": int(clock())})
    await validator.validate(token)
    assert len(validator.verified_cache) == 1
    clock.advance(-60)
    with pytest.raises(InvalidTokenError, match="nbf"):
        await validator.validate(token)
    clock.advance(60)
    assert (await validator.validate(token)).subject == "alice"


async def test_cache_hit_skips_verification_but_not_time(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    token = issuer.token()
    first = await validator.validate(token)
    issuer.remove_key(issuer.current_key.kid)
    assert await validator.validate(token) is first  # a dict lookup, no JWKS work


async def test_verified_cache_keeps_a_digest_not_the_token(
    issuer: LocalIssuer, validator: TokenValidator
) -> None:
    """The cache is keyed by a 256-bit digest: the token is nowhere in it, and tokens that
    differ in their last character (the signature's) are different entries."""
    token = issuer.token()
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    await validator.validate(token)
    with pytest.raises(InvalidTokenError):
        await validator.validate(other)  # a broken signature: not found in the cache
    entries = validator.verified_cache._entries._entries
    assert len(entries) == 1
    [(key, entry)] = entries.items()
    assert isinstance(key, bytes)
    assert len(key) == 32
    assert token.encode() not in key
    assert token.split(".")[2] not in repr(entry)  # nor its signature, the secret part


@pytest.mark.parametrize("refusal", [ValueError, TypeError], ids=["fips-mode", "no-builtin"])
def test_the_cache_key_falls_back_to_sha256_where_blake2b_is_refused(
    monkeypatch: pytest.MonkeyPatch, refusal: type[Exception]
) -> None:
    """A FIPS-mode Python refuses BLAKE2b: the cache is then keyed by SHA-256 (still 256 bits),
    instead of every token failing on its digest."""
    import hashlib

    from tokensmith.resource import _util

    assert _util._cache_digest()(b"t") == hashlib.blake2b(b"t", digest_size=32).digest()

    def refused(*args: object, **kwargs: object) -> object:
        raise refusal("blake2b is not allowed here")

    monkeypatch.setattr(hashlib, "blake2b", refused)
    assert _util._cache_digest()(b"t") == hashlib.sha256(b"t").digest()
    monkeypatch.delattr(hashlib, "blake2b")  # a Python with no code for it
    assert _util._cache_digest()(b"t") == hashlib.sha256(b"t").digest()


async def test_verified_cache_is_bounded(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = issuer.validator(http, clock=clock, verified_cache_size=3)
    for n in range(10):
        await validator.validate(issuer.token(sub=f"user{n}"))
    assert len(validator.verified_cache) == 3


async def test_discovery_issuer_mismatch_refused(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = TokenValidator(
        http=http, issuer=issuer.url + "/", audience=issuer.default_audience, clock=clock
    )
    with pytest.raises(IssuerUnavailableError, match="names issuer"):
        await validator.validate(issuer.token())


async def test_discovery_falls_back_to_openid_configuration(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    """An issuer with only /.well-known/openid-configuration is found through it."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    key = SigningKey.generate("EdDSA")
    state: dict[str, str] = {}

    async def openid_configuration(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": state["url"], "jwks_uri": state["url"] + "/keys"})

    async def keys(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.public_jwk()]})

    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", openid_configuration),
            Route("/keys", keys),
        ]
    )
    with ThreadedServer(app) as server:
        state["url"] = server.url
        validator = TokenValidator(http=http, issuer=server.url, audience="api", clock=clock)
        now = int(clock())
        claims = {"iss": server.url, "aud": "api", "sub": "s", "iat": now, "exp": now + 60}
        token = forge({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid}, claims, key.private_key)
        assert (await validator.validate(token)).subject == "s"


async def test_explicit_jwks_uri_skips_discovery(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = issuer.validator(http, clock=clock, jwks_uri=issuer.jwks_uri)
    await validator.validate(issuer.token())
    assert issuer.requests["/.well-known/oauth-authorization-server"] == 0
    assert issuer.jwks_requests == 1


async def test_unreachable_issuer_is_unavailable_not_invalid(
    http: httpx.AsyncClient, clock: FakeClock, issuer: LocalIssuer
) -> None:
    validator = TokenValidator(http=http, issuer="http://127.0.0.1:9", audience="api", clock=clock)
    with pytest.raises(IssuerUnavailableError):
        await validator.validate(issuer.token())


def test_principal_has_scopes() -> None:
    principal = Principal("a", None, frozenset({"x", "y"}), {}, "jwt")
    assert principal.has_scopes(["x"])
    assert not principal.has_scopes(["x", "z"])


async def test_discovery_shared_and_retried_after_interval(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    import asyncio

    validator = TokenValidator(
        http=http, issuer=issuer.url + "/x", audience=issuer.default_audience, clock=clock
    )
    results = await asyncio.gather(
        *(validator.validate(issuer.token()) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, IssuerUnavailableError) for r in results)
    metadata_hits = sum(v for k, v in issuer.requests.items() if "well-known" in k)
    assert metadata_hits == 3  # one discovery (three locations tried) for 20 concurrent requests
    clock.advance(5)
    with pytest.raises(IssuerUnavailableError, match="recently"):
        await validator.validate(issuer.token())
    assert sum(v for k, v in issuer.requests.items() if "well-known" in k) == metadata_hits
    clock.advance(6)
    with pytest.raises(IssuerUnavailableError, match="no authorization server metadata"):
        await validator.validate(issuer.token())
    assert sum(v for k, v in issuer.requests.items() if "well-known" in k) == 6


async def test_unencoded_payload_b64_false_refused(
    issuer: LocalIssuer, validator: TokenValidator, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    header["b64"] = False
    with pytest.raises(InvalidTokenError):
        await validator.validate(forge(header, claims, issuer.current_key.private_key))


_SEGMENTS = [
    b"",
    b"e30",
    b"e30=",  # padding present but wrong length
    b"eyJhIjoxfQ",
    b"eyJhIjoxfQ==",  # exact padding: tolerated (like PyJWT)
    b"eyJhIjoxfQ===",
    b"eyJhIjoxfR",  # non-canonical trailing bits
    b"eyJ+IjoxfQ",  # '+' is base64, not base64url
    b"eyJ/IjoxfQ",
    b"eyJh IjoxfQ",
    b"eyJh\nIjoxfQ",
    b"e",
    b"AAAAA",
    b"_-_-",
    b"!!!!",
]


@pytest.mark.parametrize("segment", _SEGMENTS)
def test_strict_base64url_same_verdict_as_pyjwt(segment: bytes) -> None:
    from jwt.api_jws import PyJWS
    from jwt.exceptions import DecodeError

    from tokensmith.resource.jwt_validator import _b64url_decode

    try:
        expected: bytes | None = PyJWS._decode_base64url_segment(segment, "x")
    except DecodeError:
        expected = None
    try:
        actual: bytes | None = _b64url_decode(segment, "x")
    except DecodeError:
        actual = None
    assert actual == expected


def test_strict_jws_hook_is_in_use() -> None:
    from tokensmith.resource.jwt_validator import _JWS, _b64url_decode

    assert _JWS._decode_base64url_segment(b"e30", "x") == b"{}"
    with pytest.raises(jwt.exceptions.DecodeError):
        _JWS._decode_base64url_segment(b"eyJ+IjoxfQ", "x")
    assert type(_JWS)._decode_base64url_segment is not jwt.api_jws.PyJWS._decode_base64url_segment
    assert _b64url_decode(b"e30") == b"{}"


@pytest.mark.parametrize("part", [0, 1, 2])
async def test_non_base64url_segment_refused(
    issuer: LocalIssuer, validator: TokenValidator, part: int
) -> None:
    """A '+' or '/' (plain base64) in any segment is not base64url: refused."""
    token = issuer.token()
    parts = token.split(".")
    parts[part] = parts[part][:-2] + "+/"
    with pytest.raises(InvalidTokenError):
        await validator.validate(".".join(parts))
