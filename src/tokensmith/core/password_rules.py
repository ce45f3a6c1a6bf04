"""Rules for new passwords, per NIST SP 800-63B-4 §3.1.1.2 (August 2025).

- **Length.** At least ``min_length`` characters (Unicode code points, after NFC). SP 800-63B-4
  asks for at least 15 when the password is the only factor and allows 8 when it is used only
  as part of multi-factor authentication; tokensmith signs people in with a password alone, so
  the default is 15 (``password_min_length``; an operator who requires a second factor for
  everyone may lower it, never below 8). At most 1024 (the SP asks to accept at least 64).
- **No composition rules** (no "one digit, one symbol") and no periodic changes: the SP forbids
  both. Every printable character, spaces and Unicode included, is accepted.
- **Blocklist.** A new password is refused when it is a commonly used or breached one: by default
  the list shipped with tokensmith (``core/data/common-passwords.txt.gz``, 8 351 passwords of 8
  characters or more, compared case-insensitively), or any ``BreachedPasswordChecker`` an
  operator plugs in (a larger list, a k-anonymity service). Also refused: a password that is the
  account's own username or e-mail address (context-specific words).

The rules apply where a password is chosen (sign-up, reset, ``tokensmith users create`` and
``set-password`` through ``tokensmith.admin.service.Admin``); signing in with an existing
password never re-checks them.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Protocol

from tokensmith.core.passwords import MAX_PASSWORD_LENGTH

DEFAULT_MIN_LENGTH = 15
"""SP 800-63B-4 §3.1.1.2: passwords used as a single factor have at least 15 characters."""
LOWEST_MIN_LENGTH = 8
"""SP 800-63B-4 §3.1.1.2: never fewer than 8, even when only used with a second factor."""


class WeakPassword(ValueError):
    """A new password breaks a rule; the message is meant for the person choosing it."""


class BreachedPasswordChecker(Protocol):
    """Tells whether a password is known to attackers (a breach corpus, a common-password list).

    Implement it over whatever you trust (a bigger file, a k-anonymity range API with a timeout)
    and hand it to ``PasswordRules``; it is only asked about passwords being chosen."""

    async def is_breached(self, password: str) -> bool: ...


@cache
def _shipped_list() -> frozenset[str]:
    data = resources.files("tokensmith.core").joinpath("data/common-passwords.txt.gz")
    text = gzip.decompress(data.read_bytes()).decode("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


class CommonPasswords:
    """The blocklist shipped with tokensmith, or any list of passwords (case-insensitive)."""

    def __init__(self, passwords: Iterable[str] | None = None) -> None:
        self._passwords = (
            _shipped_list()
            if passwords is None
            else frozenset(p.strip().casefold() for p in passwords if p.strip())
        )

    def __len__(self) -> int:
        return len(self._passwords)

    def contains(self, password: str) -> bool:
        return unicodedata.normalize("NFC", password).casefold() in self._passwords

    async def is_breached(self, password: str) -> bool:
        return self.contains(password)


@dataclass(frozen=True, slots=True)
class PasswordRules:
    min_length: int = DEFAULT_MIN_LENGTH
    max_length: int = MAX_PASSWORD_LENGTH
    checker: BreachedPasswordChecker | None = field(default=None, repr=False)
    """``None``: no blocklist (an operator's explicit choice; the default settings use
    ``CommonPasswords``)."""

    def __post_init__(self) -> None:
        if not LOWEST_MIN_LENGTH <= self.min_length <= 64:
            raise ValueError(f"min_length must be between {LOWEST_MIN_LENGTH} and 64")
        if not 64 <= self.max_length <= MAX_PASSWORD_LENGTH:
            raise ValueError(f"max_length must be between 64 and {MAX_PASSWORD_LENGTH}")

    async def check(self, password: str, *, context: Iterable[str | None] = ()) -> None:
        """Raise ``WeakPassword`` when ``password`` may not be chosen; ``context``: the account's
        username, e-mail address and the like, which the password must not be."""
        length = len(unicodedata.normalize("NFC", password))
        if length < self.min_length:
            raise WeakPassword(f"Choose a password of at least {self.min_length} characters.")
        if length > self.max_length:
            raise WeakPassword(f"A password has at most {self.max_length} characters.")
        if any(
            unicodedata.category(ch) in ("Cc", "Cs") for ch in password
        ):  # control characters and lone surrogates cannot be typed back reliably
            raise WeakPassword("A password must not contain control characters.")
        folded = password.casefold()
        for word in context:
            if word and folded == word.casefold():
                raise WeakPassword("Your password must not be your username or e-mail address.")
        if self.checker is not None and await self.checker.is_breached(password):
            raise WeakPassword(
                "This password is on a list of commonly used or breached passwords; choose "
                "another one (a few unrelated words make a long password easy to remember)."
            )


__all__ = [
    "DEFAULT_MIN_LENGTH",
    "LOWEST_MIN_LENGTH",
    "BreachedPasswordChecker",
    "CommonPasswords",
    "PasswordRules",
    "WeakPassword",
]
