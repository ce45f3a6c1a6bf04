"""Recovery codes: one-time codes for a user who lost their authenticator (NIST SP 800-63B
§5.1.2 look-up secrets).

Ten codes of 10 characters from a 31-letter alphabet (49 bits each), shown once when made and
stored only as HMAC-SHA256 digests under the server pepper (``core.secrets``): their entropy
makes a slow hash unnecessary, and the attempts are throttled like every second-factor attempt.
A code works once (``RecoveryCodeStore.use`` marks it used atomically); making new ones deletes
the old ones. They are a fallback: they exist while a primary factor does.
"""

from __future__ import annotations

import secrets as _secrets

from tokensmith.core.ports import Stores
from tokensmith.core.secrets import digest

COUNT = 10
LENGTH = 10
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""31 letters and digits, without those easily confused (i, l, o, 0, 1)."""


def new_codes() -> tuple[str, ...]:
    """Ten fresh codes, grouped ``xxxxx-xxxxx`` for reading."""
    out = []
    for _ in range(COUNT):
        raw = "".join(_secrets.choice(ALPHABET) for _ in range(LENGTH))
        out.append(f"{raw[:5]}-{raw[5:]}")
    return tuple(out)


def normalize(value: str) -> str | None:
    """A typed code without spaces, dashes and case; ``None`` when it cannot be one."""
    raw = "".join(ch for ch in value.lower() if ch not in " -\t")
    if len(raw) != LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return raw


def code_digest(user_id: str, code: str, pepper: bytes) -> str:
    return digest(f"recovery|{user_id}|{code}", pepper)


class RecoveryCodes:
    """Recovery codes as a (fallback) second factor (``core.mfa.SecondFactor``)."""

    name = "recovery_code"
    amr = ("otp",)
    fallback = True

    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    async def is_enrolled(self, stores: Stores, user_id: str) -> bool:
        return await stores.recovery_codes.count_unused(user_id) > 0

    async def verify(self, stores: Stores, user_id: str, response: str, *, now: int) -> bool:
        code = normalize(response)
        if code is None:
            return False
        return await stores.recovery_codes.use(
            user_id, code_digest(user_id, code, self._pepper), now
        )

    async def replace(self, stores: Stores, user_id: str, now: int) -> tuple[str, ...]:
        """New codes for the user (the old ones stop working); returned once, to be shown."""
        codes = new_codes()
        digests = tuple(code_digest(user_id, normalize(c) or "", self._pepper) for c in codes)
        await stores.recovery_codes.replace(user_id, digests, now)
        return codes
