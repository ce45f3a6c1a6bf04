"""The one base64url codec (RFC 7515 §2) every part of tokensmith shares."""

from __future__ import annotations

import pytest

from tokensmith.core.jose import b64url_decode, b64url_encode


def test_encode_is_unpadded_base64url() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", bytes(range(256))])
def test_decode_inverts_encode(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


def test_exact_padding_is_tolerated() -> None:
    assert b64url_decode("YQ==") == b"a"


@pytest.mark.parametrize(
    "text",
    ["YQ=", "YQ===", "Y", "YR", "a+b/", "YQ==YQ", "é"],
    ids=[
        "short-padding",
        "long-padding",
        "one-char",
        "non-canonical",
        "std-alphabet",
        "inner",
        "unicode",
    ],
)
def test_strict_decode_refuses_what_is_not_canonical_base64url(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_lenient_decode_reads_operator_typed_values() -> None:
    assert b64url_decode("YQ", lenient=True) == b"a"
    assert b64url_decode("a+b/", lenient=True) == b64url_decode("a-b_")
