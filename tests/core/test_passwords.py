"""``core.passwords``: login-name normalisation and argon2id verification."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.passwords import (
    MAX_PASSWORD_LENGTH,
    Passwords,
    check_password_policy,
    normalize_login,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Alice", "alice"),
        ("  alice  ", "alice"),
        ("ALICE@Example.COM", "alice@example.com"),
        ("\uff41\uff4c\uff49\uff43\uff45", "alice"),  # fullwidth letters
        ("\u212aelvin", "kelvin"),  # Kelvin sign
        ("Stra\u00dfe", "strasse"),
    ],
)
def test_normalize_login(value: str, expected: str) -> None:
    assert normalize_login(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "a b",
        "al\u200bice",
        "al\x00ice",
        "al\nice",
        "a\u2028b",
        "x" * 201,
        "al\uaaf7ice",  # unassigned
        "al\ue000ice",  # private use
        "al\ud800ice",  # lone surrogate
    ],
)
def test_normalize_login_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="login name"):
        normalize_login(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalize_login_is_idempotent_property(value: str) -> None:
    try:
        once = normalize_login(value)
    except ValueError:
        return
    assert normalize_login(once) == once
    assert once == once.strip()
    assert " " not in once
    assert all(ch.isprintable() for ch in once)


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords(time_cost=1, memory_cost=1024, parallelism=1)


def test_verify(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse batterY")
    assert not passwords.verify(None, "correct horse battery")  # unknown user
    assert not passwords.verify("not a hash", "x")
    assert not passwords.verify(stored, "x" * (MAX_PASSWORD_LENGTH + 1))


def test_policy() -> None:
    check_password_policy("8 chars!")
    with pytest.raises(ValueError, match="at least"):
        check_password_policy("7 chars")
    with pytest.raises(ValueError, match="at most"):
        check_password_policy("x" * (MAX_PASSWORD_LENGTH + 1))
