"""The token signer's own JWS encoding (``core.jwt_access_token``) and the key ring's choice of
signing key: the same tokens and keys as the general, slower paths they stand in for.

- ``_raw_ecdsa`` reads OpenSSL's DER signature by slicing; it must give exactly the ``r || s``
  of ``decode_dss_signature`` for every signature, and leave anything it does not recognise to
  that function (which refuses what is not DER).
- ``sign`` keeps each key's encoded header; the header must stay that key's and type's.
- ``KeyRing.signing_key`` keeps its answer for the span in which it holds; at every time it
  must answer what a fresh look at the keys answers.
"""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core import jwt_access_token
from tokensmith.core.keys import KeyRing, SigningKey, generate_private_key, public_jwk


def _key(alg: str, *, activates_at: int = 0, retired_at: int | None = None) -> SigningKey:
    private = generate_private_key(alg)
    jwk = public_jwk(private, alg)
    return SigningKey(
        jwk["kid"],
        alg,
        private,
        jwk,
        created_at=0,
        activates_at=activates_at,
        retired_at=retired_at,
    )


def _slow_raw(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order of P-256: every r and s is below it."""


@settings(max_examples=300, deadline=None)
@given(r=st.integers(1, ORDER - 1), s=st.integers(1, ORDER - 1))
def test_raw_ecdsa_is_decode_dss_signatures_property(r: int, s: int) -> None:
    """Every shape DER gives a P-256 (r, s): 33 bytes with a leading zero, 32, or fewer (small
    values, whose leading zero bytes DER drops)."""
    der = encode_dss_signature(r, s)
    assert jwt_access_token._raw_ecdsa(der, 32) == _slow_raw(der)


@pytest.mark.parametrize(
    ("r", "s"),
    [(1, 1), (0x80, 0x7F), (2**255, 2**248 - 1), (ORDER - 1, 1), (1, ORDER - 1), (2**8, 2**247)],
)
def test_raw_ecdsa_edges(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    assert jwt_access_token._raw_ecdsa(der, 32) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_real_signatures_are_read_as_decode_dss_signature_reads_them() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for i in range(500):
        der = key.sign(b"%d" % i, jwt_access_token._ECDSA_SHA256)
        assert jwt_access_token._raw_ecdsa(der, 32) == _slow_raw(der)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x06\x02\x01\x01\x02\x01",  # cut short
        b"\x30\x06\x02\x01\x01\x03\x01\x01",  # the second element is not an INTEGER
        b"\x31\x06\x02\x01\x01\x02\x01\x01",  # not a SEQUENCE
        b"\x30\x07\x02\x01\x01\x02\x01\x01\x00",  # trailing byte inside the sequence
        b"\x30\x06\x02\x01\x81\x02\x01\x01",  # a negative r
        b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # r not minimally encoded
        b"\x30\x81\x06\x02\x01\x01\x02\x01\x01",  # a long-form length
    ],
)
def test_what_is_not_a_p256_signature_goes_to_decode_dss_signature(der: bytes) -> None:
    """Nothing malformed is read by slicing: it reaches ``decode_dss_signature``, which either
    refuses it or reads it, and ``_raw_ecdsa`` answers as that function does."""
    try:
        expected = _slow_raw(der)
    except (ValueError, OverflowError):
        with pytest.raises((ValueError, OverflowError)):
            jwt_access_token._raw_ecdsa(der, 32)
    else:
        assert jwt_access_token._raw_ecdsa(der, 32) == expected


def test_a_value_too_long_for_the_curve_is_not_sliced_down() -> None:
    """An r of 33 significant bytes is not P-256's: slicing would drop its first byte and sign
    with another value; it goes to ``decode_dss_signature`` and ``to_bytes`` refuses it."""
    der = encode_dss_signature(2**256 + 5, 7)
    with pytest.raises(OverflowError):
        jwt_access_token._raw_ecdsa(der, 32)


def _header(token: str) -> dict[str, str]:
    segment = token.split(".")[0]
    decoded: dict[str, str] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_each_token_has_its_own_keys_header_and_verifies(alg: str) -> None:
    """Two keys of one algorithm, two types: each token names its key and type, verifies with
    that key's public half and is the header PyJWT would write."""
    keys = [_key(alg), _key(alg)]
    for key in keys * 2:
        for typ in ("at+jwt", "JWT"):
            token = jwt_access_token.sign(key, {"sub": "s", "n": 1}, typ)
            assert list(_header(token).items()) == [
                ("alg", alg),
                ("kid", key.kid),
                ("typ", typ),
            ]
            public = jwt.PyJWK(key.public_jwk, algorithm=alg)
            assert jwt.decode(token, public, algorithms=[alg]) == {"sub": "s", "n": 1}


def test_the_kept_headers_are_bounded() -> None:
    jwt_access_token._HEADERS.clear()
    key = _key("ES256")
    for i in range(200):
        token = jwt_access_token.sign(key, {"i": i}, f"t{i}")
        assert _header(token)["typ"] == f"t{i}"
    assert len(jwt_access_token._HEADERS) <= 64


def _fresh_look(keys: list[SigningKey], alg: str, now: int) -> str | None:
    active = [
        k
        for k in sorted(keys, key=lambda k: (k.activates_at, k.created_at))
        if k.alg == alg and k.activates_at <= now and (k.retired_at is None or k.retired_at > now)
    ]
    return active[-1].kid if active else None


def _answer(ring: KeyRing, alg: str, now: int) -> str | None:
    try:
        return ring.signing_key(alg, now).kid
    except LookupError:
        return None


KEY_POOL = {alg: [_key(alg) for _ in range(4)] for alg in ("ES256", "EdDSA")}


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(
        st.tuples(
            st.sampled_from(["ES256", "EdDSA"]),
            st.integers(0, 100),
            st.one_of(st.none(), st.integers(0, 100)),
        ),
        min_size=1,
        max_size=4,
    ),
    times=st.lists(st.integers(-5, 110), min_size=1, max_size=30),
)
def test_the_kept_signing_key_is_the_one_a_fresh_look_finds_property(
    spans: list[tuple[str, int, int | None]], times: list[int]
) -> None:
    """Keys activating and retiring at any times, asked about in any order (the clock may go
    back): the ring answers what looking at every key again answers."""
    used = {"ES256": 0, "EdDSA": 0}
    keys = []
    for alg, activates_at, retired_at in spans:
        base = KEY_POOL[alg][used[alg]]
        used[alg] += 1
        keys.append(
            SigningKey(
                base.kid,
                alg,
                base.private_key,
                base.public_jwk,
                created_at=0,
                activates_at=activates_at,
                retired_at=retired_at,
            )
        )
    ring = KeyRing(keys)
    for now in times:
        for alg in ("ES256", "EdDSA"):
            assert _answer(ring, alg, now) == _fresh_look(keys, alg, now), (alg, now)


def test_a_rotation_is_seen_at_the_second_it_happens() -> None:
    old = _key("ES256", retired_at=1_000)
    new = _key("ES256", activates_at=1_000)
    ring = KeyRing([old, new])
    assert ring.signing_key("ES256", 999).kid == old.kid
    assert ring.signing_key("ES256", 999).kid == old.kid  # kept
    assert ring.signing_key("ES256", 1_000).kid == new.kid
    assert ring.signing_key("ES256", 999).kid == old.kid  # a clock set back
