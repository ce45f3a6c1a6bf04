"""``core.scopes``: RFC 6749 §3.3 scope syntax and the allowed-scope check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.errors import InvalidRequest, InvalidScope
from tokensmith.core.scopes import (
    MAX_SCOPES,
    check_allowed,
    check_scope_token,
    format_scope,
    is_scope_token,
    parse_scope,
)

TOKEN_CHARS = [chr(c) for c in (0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F))]
TOKENS = st.text(st.sampled_from(TOKEN_CHARS), min_size=1, max_size=12)


def test_parse_keeps_order_and_drops_repeats() -> None:
    assert parse_scope("docs:read docs:write docs:read") == ("docs:read", "docs:write")
    assert parse_scope(None) == ()


@pytest.mark.parametrize("value", ["a  b", " a", "a ", "a\tb", 'a"b', "a\\b", "é", "a\nb", ""])
def test_malformed_scope_is_invalid_scope(value: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(value)


def test_too_many_scopes() -> None:
    parse_scope(" ".join(f"s{i}" for i in range(MAX_SCOPES)))
    with pytest.raises(InvalidScope):
        parse_scope(" ".join(f"s{i}" for i in range(MAX_SCOPES + 1)))


def test_check_allowed_names_the_missing_scope() -> None:
    check_allowed(("a", "b"), ("a", "b", "c"))
    with pytest.raises(InvalidScope, match="scope not allowed for this client: x"):
        check_allowed(("a", "x"), ("a", "b"))


def test_scope_token_check() -> None:
    assert is_scope_token("docs:read")
    assert not is_scope_token("docs read")
    assert check_scope_token("a") == "a"
    with pytest.raises(InvalidRequest):
        check_scope_token("a b")


@settings(max_examples=200, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=MAX_SCOPES))
def test_roundtrip_property(tokens: list[str]) -> None:
    parsed = parse_scope(format_scope(tokens))
    assert parsed == tuple(dict.fromkeys(tokens))
    assert all(is_scope_token(t) for t in parsed)


@settings(max_examples=200, deadline=None)
@given(st.lists(TOKENS, max_size=10), st.lists(TOKENS, max_size=10))
def test_allowed_iff_subset_property(requested: list[str], allowed: list[str]) -> None:
    try:
        check_allowed(requested, allowed)
    except InvalidScope:
        assert not set(requested) <= set(allowed)
    else:
        assert set(requested) <= set(allowed)


# -- fuzzing (issue 10): only the OAuthError tree, whatever the input -------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(TOKENS, max_size=60).map(" ".join))
def test_any_scope_parameter_parses_or_is_invalid_scope_property(value: str) -> None:
    try:
        parsed = parse_scope(value)
    except InvalidScope:
        return
    assert 0 < len(parsed) <= MAX_SCOPES
    assert all(is_scope_token(token) for token in parsed)
    assert len(set(parsed)) == len(parsed)
    assert set(parsed) == set(value.split(" "))
