"""Pure checks of the login transaction, PKCE, return paths and ID-token helpers (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensmith.client.crypto import CookieKeyRing, SealedBox
from tokensmith.client.errors import InvalidIdToken, InvalidState
from tokensmith.client.id_token import allowed_id_token_algs, at_hash, validate_id_token
from tokensmith.client.transaction import (
    code_challenge,
    is_safe_return_path,
    new_transaction,
    open_transaction,
    seal_transaction,
    transaction_cookie_name,
)

KEYS = CookieKeyRing(b"k" * 32)


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_fresh_transaction_values() -> None:
    one = new_transaction("p", oidc=True, return_to="/", now=0)
    two = new_transaction("p", oidc=True, return_to="/", now=0)
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", one.code_verifier)
    assert one.state != two.state
    assert one.nonce != two.nonce
    assert one.code_verifier != two.code_verifier
    assert new_transaction("p", oidc=False, return_to="/", now=0).nonce is None
    assert one.state not in repr(one)


def _sealed(provider: str = "p") -> tuple[str, str, str]:
    tx = new_transaction(provider, oidc=True, return_to="/x", now=1000.0)
    name = transaction_cookie_name(KEYS, tx.state, prefix="__Host-tsc_app")
    return tx.state, name, seal_transaction(KEYS, tx, name)


def test_transaction_round_trip_and_failures() -> None:
    state, name, value = _sealed()
    assert name.startswith("__Host-tsc_app_tx_")
    assert state not in value
    tx = open_transaction(
        KEYS, cookie_name=name, cookie_value=value, provider="p", state=state, now=1001, ttl=600
    )
    assert tx.return_to == "/x"
    cases = [
        {"cookie_value": None},
        {"cookie_value": value[:-3] + "AAA"},
        {"cookie_name": "__Host-tsc_app_tx_other"},  # sealed under another name
        {"provider": "q"},
        {"state": state + "x"},
        {"now": 1000 + 601},
    ]
    for change in cases:
        args = {
            "cookie_name": name,
            "cookie_value": value,
            "provider": "p",
            "state": state,
            "now": 1001.0,
            "ttl": 600.0,
        }
        args.update(change)
        with pytest.raises(InvalidState):
            open_transaction(KEYS, **args)  # type: ignore[arg-type]
    other = CookieKeyRing(b"o" * 32)
    with pytest.raises(InvalidState):
        open_transaction(
            other,
            cookie_name=name,
            cookie_value=value,
            provider="p",
            state=state,
            now=1001,
            ttl=600,
        )


def test_sealed_box_rejects_garbage() -> None:
    box = SealedBox(b"\x01" * 32)
    sealed = box.seal(b"secret", b"aad")
    assert box.open(sealed, b"aad") == b"secret"
    assert box.open(sealed, b"other") is None
    for garbage in ("", "!!!", "AAAA", sealed + "=", sealed[:-1]):
        assert box.open(garbage, b"aad") is None
    with pytest.raises(ValueError, match="32"):
        CookieKeyRing(b"short")


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("/", True),
        ("/a/b?c=d#e", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("https://evil.example", False),
        ("/\t/evil.example", False),
        ("/a\nb", False),
        ("", False),
        ("evil", False),
        ("/a\\b", False),
    ],
)
def test_is_safe_return_path(path: str, safe: bool) -> None:
    assert is_safe_return_path(path) is safe


def test_allowed_algs_never_none_or_hmac() -> None:
    assert allowed_id_token_algs(["none", "HS256", "RS256"], None) == {"RS256"}
    assert allowed_id_token_algs(None, None) == {"RS256"}
    assert allowed_id_token_algs(["ES256", "RS256"], ("ES256",)) == {"ES256"}


def test_at_hash_matches_oidc_example() -> None:
    token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    expected = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16])
    assert at_hash(token, "RS256") == expected.rstrip(b"=").decode()
    assert at_hash(token, "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"


async def test_validate_rejects_before_key_lookup_for_bad_alg() -> None:
    calls: list[tuple[str | None, str]] = []

    async def get_key(kid: str | None, alg: str) -> object:
        calls.append((kid, alg))
        raise AssertionError("must not be called")

    none_token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
    for token in (none_token, "not a jwt", "a" * 20000):
        with pytest.raises(InvalidIdToken):
            await validate_id_token(
                token,
                get_key=get_key,  # type: ignore[arg-type]
                issuer="https://op",
                client_id="c",
                nonce="n",
                allowed_algs=frozenset({"RS256"}),
                now=0,
            )
    assert calls == []


@given(st.text(max_size=60))
def test_safe_return_paths_stay_on_this_origin(path: str) -> None:
    """BCP-C09 as a property: whatever is accepted resolves to this origin."""
    if is_safe_return_path(path):
        target = urlsplit(urljoin("https://app.test/", path))
        assert (target.scheme, target.netloc) == ("https", "app.test")


def test_transaction_cookie_stays_small() -> None:
    """W-35: name + value well under 4096 bytes, even with the longest allowed return path."""
    tx = new_transaction("provider-name", oidc=True, return_to="/" + "a" * 2047, now=0)
    name = transaction_cookie_name(KEYS, tx.state, prefix="__Host-" + "a" * 40)
    assert len(name) + 1 + len(seal_transaction(KEYS, tx, name)) < 4096
