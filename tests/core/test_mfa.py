"""Second factors in core, without I/O: TOTP arithmetic against RFC 6238's test vector, the
window and its constant-time search, sealing of keys, recovery-code formats, and the ``amr`` /
``acr`` a sign-in yields."""

from __future__ import annotations

import base64

import pytest

from tokensmith.core import mfa, recovery_codes
from tokensmith.core.secret_box import SecretBox, SecretBoxError
from tokensmith.core.totp import Totp, matching_step, normalize_code

# RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890"; at T = 59 the 8-digit TOTP is
# 94287082, whose last six digits are the 6-digit code (RFC 4226 §5.3: mod 10^digits).
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


def test_rfc_6238_test_vector() -> None:
    assert matching_step(RFC_SECRET, "287082", 59) == 1
    # T = 1111111109: 07081804
    assert matching_step(RFC_SECRET, "081804", 1111111109) == 1111111109 // 30


def test_the_window_is_one_step_either_side() -> None:
    t = 1111111109
    step = t // 30
    assert matching_step(RFC_SECRET, "081804", t + 30) == step  # the previous step
    assert matching_step(RFC_SECRET, "081804", t - 30) == step  # the next step
    assert matching_step(RFC_SECRET, "081804", t + 60) is None
    assert matching_step(RFC_SECRET, "081804", t - 60) is None


@pytest.mark.parametrize(
    ("typed", "code"),
    [("123456", "123456"), ("123 456", "123456"), (" 123456\n", "123456")],
)
def test_codes_may_be_typed_with_spaces(typed: str, code: str) -> None:
    assert normalize_code(typed) == code


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 34 5"])
def test_impossible_codes(typed: str) -> None:
    assert normalize_code(typed) is None


def test_sealed_keys_open_only_for_their_owner_and_server() -> None:
    box = SecretBox(pepper=b"p" * 32)
    sealed = box.seal("JBSWY3DPEHPK3PXP", owner="u1")
    assert sealed.startswith("p1:")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert box.open(sealed, owner="u1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretBoxError):
        box.open(sealed, owner="u2")  # copied to another user's row
    with pytest.raises(SecretBoxError):
        SecretBox(pepper=b"q" * 32).open(sealed, owner="u1")
    with pytest.raises(SecretBoxError):
        box.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], owner="u1")


def test_a_kek_seals_new_keys_and_pepper_sealed_ones_still_open() -> None:
    old = SecretBox(pepper=b"p" * 32).seal("KEY", owner="u1")
    box = SecretBox(pepper=b"p" * 32, kek=b"k" * 32)
    sealed = box.seal("KEY", owner="u1")
    assert sealed.startswith("k1:")
    assert box.open(sealed, owner="u1") == "KEY"
    assert box.open(old, owner="u1") == "KEY"
    with pytest.raises(SecretBoxError):
        SecretBox(pepper=b"p" * 32).open(sealed, owner="u1")  # the KEK is gone


def test_recovery_codes() -> None:
    codes = recovery_codes.new_codes()
    assert len(set(codes)) == recovery_codes.COUNT
    for code in codes:
        assert recovery_codes.normalize(code) == code.replace("-", "")
        assert recovery_codes.normalize(code.upper().replace("-", " ")) == code.replace("-", "")
    assert recovery_codes.normalize("abc") is None
    assert recovery_codes.normalize("aaaaa-aaaa1") is None  # 1 is not in the alphabet
    a = recovery_codes.code_digest("u1", "aaaaabbbbb", b"p" * 32)
    assert a != recovery_codes.code_digest("u2", "aaaaabbbbb", b"p" * 32)
    assert "aaaaabbbbb" not in a


def test_amr_and_acr() -> None:
    totp = Totp(SecretBox(pepper=b"p" * 32), label="as.test")
    assert mfa.acr_for(("pwd",)) == mfa.ACR_SINGLE_FACTOR
    amr = mfa.with_factor(("pwd",), totp)
    assert amr == ("pwd", "otp", "mfa")
    assert mfa.acr_for(amr) == mfa.ACR_MULTI_FACTOR
    assert mfa.with_factor(amr, totp) == amr  # each once
    assert mfa.check_acr_values(("urn:other", mfa.ACR_MULTI_FACTOR)) == (mfa.ACR_MULTI_FACTOR,)


def test_factor_names_are_unique() -> None:
    totp = Totp(SecretBox(pepper=b"p" * 32), label="as.test")
    with pytest.raises(ValueError, match="same name"):
        mfa.Factors((totp, totp))


def test_the_enrolment_uri_names_the_server_and_the_account() -> None:
    totp = Totp(SecretBox(pepper=b"p" * 32), label="as.test")
    uri = totp.uri(RFC_SECRET, "alice")
    assert uri.startswith("otpauth://totp/as.test:alice?")
    assert f"secret={RFC_SECRET.rstrip('=')}" in uri
    assert "issuer=as.test" in uri
