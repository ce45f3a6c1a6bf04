"""NIST SP 800-63B-4 §3.1.1.2 rules for new passwords (``core.password_rules``)."""

from __future__ import annotations

import pytest

from tokensmith.core.password_rules import CommonPasswords, PasswordRules, WeakPassword
from tokensmith.core.self_service import normalize_email, username_for

LONG = "tangerine submarine orchestra"


async def test_length_is_the_rule_and_composition_is_not() -> None:
    rules = PasswordRules(min_length=15)
    await rules.check("all lower case words")  # no digit, no symbol, no capital: fine
    await rules.check("ünïcödé pässwörd ✓")
    await rules.check("x" * 1024)
    with pytest.raises(WeakPassword, match="at least 15"):
        await rules.check("fourteen chars")
    with pytest.raises(WeakPassword, match="at most"):
        await rules.check("x" * 1025)
    with pytest.raises(WeakPassword, match="control"):
        await rules.check("new\x00line password here")


async def test_a_lower_minimum_is_an_operators_choice_never_below_8() -> None:
    await PasswordRules(min_length=8).check("eight ch")
    with pytest.raises(ValueError, match="between 8 and 64"):
        PasswordRules(min_length=7)


async def test_the_shipped_blocklist_refuses_common_passwords_in_any_case() -> None:
    common = CommonPasswords()
    assert len(common) > 8000
    assert common.contains("password")
    assert common.contains("PassWord1")  # case-insensitive
    assert not common.contains(LONG)
    rules = PasswordRules(min_length=8, checker=common)
    with pytest.raises(WeakPassword, match="commonly used or breached"):
        await rules.check("Password1")
    await rules.check(LONG)


async def test_any_checker_plugs_in() -> None:
    class Breached:
        async def is_breached(self, password: str) -> bool:
            return password == LONG

    with pytest.raises(WeakPassword, match="breached"):
        await PasswordRules(checker=Breached()).check(LONG)
    await PasswordRules(checker=CommonPasswords(["another"])).check(LONG)


async def test_the_password_must_not_be_the_accounts_own_name() -> None:
    rules = PasswordRules(min_length=8)
    with pytest.raises(WeakPassword, match="username or e-mail"):
        await rules.check("Alice@Example.com", context=("alice", "alice@example.com"))
    await rules.check("alice@example.com!", context=("alice", "alice@example.com", None))


def test_e_mail_addresses_are_normalised_and_checked() -> None:
    assert normalize_email(" Nora@EXAMPLE.com ") == "nora@example.com"
    assert normalize_email("José.Ñ+tag@Exämple.co.uk") == "josé.ñ+tag@exämple.co.uk"
    assert normalize_email("a@corp.local") == "a@corp.local"  # an intranet's own domain
    bad_ones = (
        "nora",
        "@example.com",
        "nora@",
        "nora@localhost",
        "a@b@c.d",
        "n\r\n@x.com",
        # what a mail library reads as other recipients, or a mail client as a link (red team)
        "ceo:u1new@ex.com;",
        "x,evil@ex.com",
        "https://phish.example/undo?account=u2&@x.co",
        "<a@ex.com>",
        '"quoted"@ex.com',
        "a@[127.0.0.1]",
        "a@1.2.3.4",
        "a..b@ex.com",
        ".a@ex.com",
        "a@-ex.com",
        "a@ex..com",
        "a b@ex.com",
        "x" * 65 + "@ex.com",
    )
    for bad in bad_ones:
        with pytest.raises(ValueError):
            normalize_email(bad)


def test_usernames_of_new_accounts_come_from_the_address_with_a_random_suffix() -> None:
    name = username_for("Nora.Smith+tag@example.com")
    assert name.startswith("nora.smith-tag-")
    assert len(name) == len("nora.smith-tag-") + 6
    assert username_for("ü@example.com").startswith("user-")
    assert username_for("a@example.com") != username_for("a@example.com")
