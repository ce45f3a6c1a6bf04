"""``core.pkce``: S256 only, RFC 7636 §4.1/§4.2 lengths and alphabets."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.pkce import check_challenge, check_verifier, s256

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
VERIFIERS = st.text(st.sampled_from(UNRESERVED), min_size=43, max_size=128)


def test_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    check_verifier(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_challenge_required_and_s256_only() -> None:
    challenge = s256("a" * 43)
    assert check_challenge(challenge, "S256") == challenge
    with pytest.raises(InvalidRequest):
        check_challenge(None, "S256")
    for method in (None, "plain", "s256", "S512", ""):
        with pytest.raises(InvalidRequest):
            check_challenge(challenge, method)


@pytest.mark.parametrize(
    "challenge",
    ["a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "."],
)
def test_malformed_challenge(challenge: str) -> None:
    with pytest.raises(InvalidRequest):
        check_challenge(challenge, "S256")


@pytest.mark.parametrize("verifier", [None, "", "a", "a" * 42, "a" * 129, "a" * 42 + "+", "é" * 43])
def test_malformed_verifier_is_invalid_grant(verifier: str | None) -> None:
    with pytest.raises(InvalidGrant):
        check_verifier(verifier, s256("a" * 43))


def test_challenge_as_verifier_fails() -> None:
    challenge = s256("b" * 50)
    with pytest.raises(InvalidGrant):
        check_verifier(challenge, challenge)


@settings(max_examples=200, deadline=None)
@given(VERIFIERS)
def test_s256_of_any_verifier_is_an_acceptable_challenge_property(verifier: str) -> None:
    challenge = s256(verifier)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()
    assert check_challenge(challenge, "S256") == challenge
    check_verifier(verifier, challenge)


@settings(max_examples=200, deadline=None)
@given(VERIFIERS, VERIFIERS)
def test_only_the_right_verifier_matches_property(verifier: str, other: str) -> None:
    if verifier == other:
        return
    with pytest.raises(InvalidGrant):
        check_verifier(other, s256(verifier))


# -- fuzzing (issue 10): only the OAuthError tree, whatever the input -------------------------

ANY_TEXT = st.text(max_size=200) | st.text(st.sampled_from(UNRESERVED + "+/= é"), max_size=140)


@settings(max_examples=300, deadline=None)
@given(st.none() | ANY_TEXT, st.none() | st.sampled_from(["S256", "plain", "s256", ""]) | ANY_TEXT)
def test_any_challenge_is_accepted_as_s256_or_invalid_request_property(
    challenge: str | None, method: str | None
) -> None:
    try:
        accepted = check_challenge(challenge, method)
    except InvalidRequest:
        return
    assert method == "S256"
    assert accepted == challenge
    assert len(accepted) == 43
    base64.urlsafe_b64decode(accepted + "=")  # the base64url of 32 bytes


@settings(max_examples=300, deadline=None)
@given(st.none() | ANY_TEXT, VERIFIERS)
def test_any_verifier_matches_only_its_challenge_or_is_invalid_grant_property(
    verifier: str | None, original: str
) -> None:
    challenge = s256(original)
    try:
        check_verifier(verifier, challenge)
    except InvalidGrant:
        assert verifier != original
        return
    assert verifier == original
