"""``core.params``: one value per name, UTF-8, bounded (RFC 6749 §3.1, §3.2)."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.errors import InvalidRequest
from tokensmith.core.params import (
    MAX_PARAMS,
    check_form_content_type,
    parse_params,
    parse_query,
    printable,
)

NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
VALUES = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn")), max_size=50
).filter(str.isprintable)


def test_parses_form_and_drops_empty_values() -> None:
    assert parse_params(b"a=1&b=&c=x+y&d=%C3%A9") == {"a": "1", "c": "x y", "d": "é"}


def test_duplicate_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="'a' was sent more than once"):
        parse_params(b"a=1&b=2&a=1")


def test_duplicate_with_empty_value_still_counts() -> None:
    with pytest.raises(InvalidRequest):
        parse_params(b"a=&a=1")


def test_parse_query_reports_duplicates_without_raising() -> None:
    params, duplicates = parse_query("a=1&b=2&a=3&b=2&c=1")
    assert params == {"a": "1", "b": "2", "c": "1"}
    assert duplicates == {"a", "b"}


@pytest.mark.parametrize(
    "raw",
    [b"a=%ff", b"a=\xff", b"a=\xc3\xa9", b"a=%00", b"a=x%0Dy", b"a%00=1", b"%0a=1", b"a=%e2%80%ae"],
)
def test_bad_bytes_and_controls_are_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_params(raw)


def test_too_many_fields() -> None:
    parse_params("&".join(f"f{i}=1" for i in range(MAX_PARAMS)))
    with pytest.raises(InvalidRequest, match="too many"):
        parse_params("&".join(f"f{i}=1" for i in range(MAX_PARAMS + 1)))


def test_value_and_name_length_limits() -> None:
    parse_params("a=" + "x" * 4096)
    with pytest.raises(InvalidRequest, match="too long"):
        parse_params("a=" + "x" * 4097)
    with pytest.raises(InvalidRequest, match="too long"):
        parse_params("n" * 129 + "=1")
    with pytest.raises(InvalidRequest):
        parse_params("a=" + "x" * 300, max_value_length=256)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        " Application/X-WWW-Form-URLEncoded ",
    ],
)
def test_form_content_type_accepted(content_type: str) -> None:
    check_form_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "multipart/form-data", "text/plain"]
)
def test_other_content_types_refused(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest):
        check_form_content_type(content_type)


def test_printable_keeps_only_rfc6749_error_characters() -> None:
    assert printable("scope") == "scope"
    assert printable('é"\\\x00x') == "????x"
    assert len(printable("a" * 100)) == 40


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(NAMES, VALUES, max_size=20))
def test_roundtrip_property(data: dict[str, str]) -> None:
    """What a client encodes is what the server reads back (empty values dropped)."""
    assert parse_params(urlencode(data).encode()) == {k: v for k, v in data.items() if v}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(NAMES, VALUES, min_size=1, max_size=10), st.data())
def test_any_repeated_name_is_refused_property(data: dict[str, str], draw: st.DataObject) -> None:
    name = draw.draw(st.sampled_from(sorted(data)))
    raw = urlencode(data) + "&" + urlencode({name: draw.draw(VALUES)})
    with pytest.raises(InvalidRequest):
        parse_params(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_invalid_request_property(raw: bytes) -> None:
    """No input makes the parser fail with anything but ``invalid_request``."""
    try:
        params = parse_params(raw)
    except InvalidRequest as exc:
        description = exc.description
    else:
        assert all(v and v.isprintable() for v in params.values())
        return
    assert all(" " <= ch <= "~" for ch in description)


# -- fuzzing (issue 10): only the OAuthError tree, whatever the input -------------------------

FORM_TEXT = st.text(st.sampled_from("ab=&%+;2F0é\x00 \t#?"), max_size=400)


@settings(max_examples=300, deadline=None)
@given(FORM_TEXT | st.text(max_size=200), st.integers(min_value=1, max_value=64))
def test_any_text_parses_bounded_or_is_invalid_request_property(raw: str, limit: int) -> None:
    try:
        params = parse_params(raw, max_value_length=limit)
    except InvalidRequest as exc:
        description = exc.description
    else:
        description = None
    if description is not None:
        assert all(" " <= ch <= "~" and ch not in '"\\' for ch in description), description
        return
    assert len(params) <= MAX_PARAMS
    for name, value in params.items():
        assert value
        assert len(value) <= limit
        assert name.isprintable()
        assert value.isprintable()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80) | st.none())
def test_any_content_type_is_form_or_invalid_request_property(content_type: str | None) -> None:
    try:
        check_form_content_type(content_type)
    except InvalidRequest:
        return
    assert content_type is not None
    assert content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def test_large_bodies_are_parsed_quickly() -> None:
    """A body at the size limit (16 KiB) of separators, escapes or one long value: no hang."""
    start = time.perf_counter()
    for raw in ("&" * 16384, "%" * 16384, "a=" + "%41" * 5000, "=" * 16384, ";" * 16384):
        with contextlib.suppress(InvalidRequest):
            parse_params(raw)
    assert time.perf_counter() - start < 5


_PIECES = st.sampled_from(
    ["a", "b", "=", "&", "+", " ", "%", "%41", "%2B", "%26", "%3D", "%C3%A9", "%FF", "%e9", "é"]
)


@given(st.lists(_PIECES, max_size=16).map("".join))
def test_fields_split_as_parse_qsl_splits_them(text: str) -> None:
    """The parser's own split (no calls for parts with nothing to decode) is ``parse_qsl``'s,
    UTF-8 errors included."""
    from urllib.parse import parse_qsl

    from tokensmith.core.params import _pairs

    def outcome(split: object) -> object:
        try:
            return split()  # type: ignore[operator]
        except UnicodeDecodeError:
            return "not UTF-8"

    expected = outcome(
        lambda: parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    )
    assert outcome(lambda: _pairs(text)) == expected
