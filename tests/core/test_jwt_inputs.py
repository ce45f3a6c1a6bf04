"""JWT-shaped input to the parsers that read tokens before trusting them: ``id_token.verify_hint``
and ``token_status.verify_own_jwt`` raise only ``jwt.PyJWTError``; ``client_assertion``
raises only ``invalid_client``; ``token_status.find_active`` answers ``None`` for anything that is
not one of our tokens without touching a store. Inputs are random segments, JSON headers and
claims of any shape, and tokens really signed with our keys but carrying odd claims. Sizes are
bounded, so a hang would show as a timeout."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core import client_assertion, id_token, jwt_access_token, token_status
from tokensmith.core.errors import InvalidClient
from tokensmith.core.keys import KeyRing, SigningKey, generate_private_key, public_jwk
from tokensmith.core.models import Client

ISSUER = "https://as.test"
NOW = 1_800_000_000


def _key(alg: str) -> SigningKey:
    private = generate_private_key(alg)
    jwk = public_jwk(private, alg)
    return SigningKey(jwk["kid"], alg, private, jwk, created_at=0, activates_at=0)


KEYS = {alg: _key(alg) for alg in ("ES256", "EdDSA", "RS256")}
RING = KeyRing(list(KEYS.values()))
CLIENT_KEY = _key("ES256")
CLIENT = Client(
    client_id="c1",
    name="RP",
    client_type="confidential",
    redirect_uris=("https://rp.test/cb",),
    grant_types=("client_credentials",),
    scopes=(),
    apis=(),
    token_endpoint_auth_method="private_key_jwt",
    jwks=json.dumps({"keys": [CLIENT_KEY.public_jwk]}),
)


class Server:
    """What ``token_status`` reads of the authorization server."""

    keys = RING
    issuer = ISSUER
    pepper = b"p" * 32

    def now(self) -> int:
        return NOW


class Untouchable:
    """Stores that fail the test when used: a token that is not ours never reaches storage."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"stores.{name} used for a token that is not ours")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "nonce", "auth_time"]
)
HEADER_NAMES = st.sampled_from(["alg", "typ", "kid", "crit", "b64", "jku", "jwk", "x5u", "cty"])
KIDS = st.sampled_from([k.kid for k in KEYS.values()] + [CLIENT_KEY.kid])
ALGS = st.sampled_from(["ES256", "EdDSA", "RS256", "PS256", "HS256", "none", "ES512", ""])
TYPS = st.sampled_from(["JWT", "at+jwt", "jwt", ""])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    header: dict[str, Any] = draw(
        st.dictionaries(HEADER_NAMES | st.text(max_size=4), JSON_VALUES, max_size=4)
    )
    if draw(st.booleans()):
        header.update(alg=draw(ALGS), kid=draw(KIDS), typ=draw(TYPS))
    return header


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = draw(
        st.dictionaries(CLAIM_NAMES | st.text(max_size=4), JSON_VALUES, max_size=8)
    )
    if draw(st.booleans()):
        out.update(iss=draw(st.sampled_from([ISSUER, "c1", "https://evil.test"])), sub="c1")
        out.update(exp=NOW + draw(st.integers(-1000, 1000)), jti=draw(st.text(max_size=10)))
    return out


def segment(objects: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[str]:
    return st.one_of(
        objects.map(lambda o: b64(json.dumps(o).encode())),
        st.binary(max_size=120).map(b64),
        st.text(st.sampled_from("ABCxyz019-_=.+/ \x00é"), max_size=60),
    )


JWT_SHAPED = st.one_of(
    st.tuples(segment(headers()), segment(claims()), segment(st.just({}))).map(".".join),
    st.lists(segment(claims()), min_size=1, max_size=5).map(".".join),
    st.text(max_size=300),
)


@st.composite
def signed(draw: st.DrawFn) -> str:
    """Our own signature over odd claims and headers: claim validation, not forgery."""
    key = draw(st.sampled_from([*KEYS.values(), CLIENT_KEY]))
    extra = {"kid": key.kid, "typ": draw(TYPS)}
    payload = draw(claims())
    if not isinstance(payload.get("iss", ""), str):
        del payload["iss"]  # PyJWT refuses to encode a non-string iss
    return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=extra)


TOKENS = st.one_of(JWT_SHAPED, signed())


@settings(max_examples=200, deadline=None)
@given(TOKENS)
def test_unverified_subject_is_a_subject_or_invalid_client_property(token: str) -> None:
    try:
        sub = client_assertion.unverified_subject(token)
    except InvalidClient:
        return
    assert isinstance(sub, str)
    assert sub


@settings(max_examples=200, deadline=None)
@given(TOKENS)
def test_client_assertion_verifies_or_is_invalid_client_property(token: str) -> None:
    try:
        verified = client_assertion.verify(token, CLIENT, audiences=(ISSUER,), now=NOW)
    except InvalidClient:
        return
    assert isinstance(verified.jti, str)
    assert isinstance(verified.expires_at, int)


@settings(max_examples=200, deadline=None)
@given(TOKENS)
def test_id_token_hint_is_ours_or_pyjwt_error_property(token: str) -> None:
    try:
        claims = id_token.verify_hint(RING, token, issuer=ISSUER)
    except jwt.PyJWTError:
        return
    assert claims["iss"] == ISSUER
    assert {"sub", "aud", "iat"} <= set(claims)


@settings(max_examples=200, deadline=None)
@given(TOKENS, st.booleans())
def test_own_access_token_is_ours_or_pyjwt_error_property(token: str, verify_exp: bool) -> None:
    try:
        claims = token_status.verify_own_jwt(Server(), token, verify_exp=verify_exp)  # type: ignore[arg-type]
    except jwt.PyJWTError:
        return
    assert claims["iss"] == ISSUER
    assert {"exp", "jti"} <= set(claims)


@settings(max_examples=200, deadline=None)
@given(JWT_SHAPED.filter(lambda t: not t.startswith(("ts_rt_", "ts_at_"))))
async def test_tokens_not_ours_never_reach_the_stores_property(token: str) -> None:
    info = await token_status.find_active(Server(), token, Untouchable())  # type: ignore[arg-type]
    assert info is None


@pytest.mark.parametrize("size", [8192, 8193, 100_000])
def test_oversized_tokens_are_refused_before_parsing(size: int) -> None:
    token = "a." * (size // 2) + "a" * (size % 2)
    with pytest.raises(jwt.PyJWTError):
        id_token.verify_hint(RING, token, issuer=ISSUER)
    with pytest.raises(InvalidClient):
        client_assertion.unverified_subject(token + "x" * 8192)


def test_key_states_say_what_each_key_does_now() -> None:
    """After a rotation: the new key is ``next`` until it activates, the old one ``signing``
    until then, ``retiring`` while still published, ``retired`` once unpublished."""
    old = dataclasses.replace(
        _key("ES256"), created_at=0, activates_at=0, retired_at=NOW + 100, expires_at=NOW + 500
    )
    new = dataclasses.replace(_key("ES256"), created_at=NOW, activates_at=NOW + 100)
    other = KEYS["RS256"]
    ring = KeyRing([old, new, other])
    assert (ring.state(new, NOW), ring.state(old, NOW)) == ("next", "signing")
    assert (ring.state(new, NOW + 100), ring.state(old, NOW + 100)) == ("signing", "retiring")
    assert ring.state(old, NOW + 499) == "retiring"
    assert ring.state(old, NOW + 500) == "retired"
    assert ring.state(other, NOW) == "signing"
    # an older key of the same algorithm that nobody retired is superseded: not signing
    stale = dataclasses.replace(_key("ES256"), created_at=0, activates_at=0)
    assert KeyRing([stale, new]).state(stale, NOW + 200) == "retiring"


class ServerAt(Server):
    """The server with its injected clock at ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def now(self) -> int:
        return self.at


@pytest.mark.parametrize("minted_at", [1_000_000_000, 4_000_000_000])
def test_own_access_token_times_follow_the_injected_clock(minted_at: int) -> None:
    """Long before and long after the wall clock: only the server's clock decides."""
    token, jti = jwt_access_token.mint(
        KEYS["ES256"],
        issuer=ISSUER,
        subject="u1",
        audience="urn:a",
        client_id="app",
        scopes=("docs:read",),
        now=minted_at,
        ttl=300,
    )
    verify = token_status.verify_own_jwt
    assert verify(ServerAt(minted_at + 10), token, verify_exp=True)["jti"] == jti  # type: ignore[arg-type]
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(ServerAt(minted_at + 300), token, verify_exp=True)  # type: ignore[arg-type]
    # revocation looks up an expired token too
    assert verify(ServerAt(minted_at + 300), token, verify_exp=False)["jti"] == jti  # type: ignore[arg-type]
    with pytest.raises(jwt.ImmatureSignatureError):
        verify(ServerAt(minted_at - 10), token, verify_exp=True)  # type: ignore[arg-type]
