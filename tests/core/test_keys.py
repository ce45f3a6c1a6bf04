"""Signing keys at rest, as the key store reads them: a stored key is parsed once per process
(an RSA key's parse checks the key, tens of milliseconds of the event loop at each reload), and
remembering it never lets a wrong or missing key-encryption key through."""

from __future__ import annotations

import os

import pytest

from tests.support.database import forget_keys
from tokensmith.core.keys import (
    KeyLoadError,
    decode_private_key,
    encode_private_key,
    generate_private_key,
    public_jwk,
)
from tokensmith.storage.sqlalchemy import keystore
from tokensmith.storage.sqlalchemy.engine import create_engine

KEK = os.urandom(32)


def stored_rsa_key(kek: bytes | None) -> tuple[str, str]:
    key = generate_private_key("RS256")
    kid = public_jwk(key, "RS256")["kid"]
    return encode_private_key(key, kid=kid, kek=kek), kid


@pytest.mark.parametrize("kek", [None, KEK], ids=["clear", "encrypted"])
def test_a_stored_key_is_parsed_once(kek: bytes | None) -> None:
    stored, kid = stored_rsa_key(kek)
    first = decode_private_key(stored, kid=kid, kek=kek)
    assert decode_private_key(stored, kid=kid, kek=kek) is first


def test_a_remembered_key_still_needs_its_key_encryption_key() -> None:
    stored, kid = stored_rsa_key(KEK)
    decode_private_key(stored, kid=kid, kek=KEK)
    wrong = os.urandom(32)
    for _ in range(2):  # a failure is not remembered as anything else either
        with pytest.raises(KeyLoadError, match="wrong key-encryption key"):
            decode_private_key(stored, kid=kid, kek=wrong)
        with pytest.raises(KeyLoadError, match="no key-encryption key is configured"):
            decode_private_key(stored, kid=kid, kek=None)
    assert decode_private_key(stored, kid=kid, kek=KEK) is not None


def test_a_stored_key_under_another_kid_is_refused() -> None:
    stored, kid = stored_rsa_key(KEK)
    decode_private_key(stored, kid=kid, kek=KEK)
    with pytest.raises(KeyLoadError):  # the kid is the associated data of the encryption
        decode_private_key(stored, kid="another", kek=KEK)


async def test_the_first_start_returns_the_keys_it_stored(sqlite_url: str) -> None:
    await forget_keys(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        algs = ("ES256", "RS256")
        made = await keystore.ensure_keys(engine, algs=algs, kek=KEK, clock=lambda: 1000)
        stored = await keystore.load_keys(engine, kek=KEK)
        again = await keystore.ensure_keys(engine, algs=algs, kek=KEK, clock=lambda: 1001)
    finally:
        await engine.dispose()
    assert sorted(k.alg for k in made.keys) == ["ES256", "RS256"]
    for ring in (stored, again.keys):
        assert {(k.kid, k.alg, k.activates_at) for k in ring} == {
            (k.kid, k.alg, k.activates_at) for k in made.keys
        }


async def test_a_start_that_read_the_clock_before_another_stored_its_keys_makes_none(
    database_url: str,
) -> None:
    """Two processes start together. One reads the clock at second 100 and finds no key; the
    other, at second 101, takes the lock first and stores keys that activate at 101. Under the
    lock the first must read the clock again: at 100 those keys are not yet active, and it made
    its own (seen once in CI as two keys per algorithm after three processes started)."""
    await forget_keys(database_url)
    engine = create_engine(database_url)
    algs = ("ES256", "RS256")
    try:
        other = await keystore.ensure_keys(engine, algs=algs, kek=None, clock=lambda: 101.0)
        readings = iter([100.5, 101.2])
        ring = await keystore.ensure_keys(engine, algs=algs, kek=None, clock=lambda: next(readings))
        stored = await keystore.load_keys(engine, kek=None)
    finally:
        await engine.dispose()
    assert next(readings, None) is None, "the clock is read again under the lock"
    assert sorted(k.kid for k in stored) == sorted(k.kid for k in other.keys)
    assert sorted(k.kid for k in ring.keys) == sorted(k.kid for k in other.keys)
