"""TOTP (RFC 6238) as a second factor, with pyotp: 6 digits, 30-second steps, SHA-1 (what
authenticator apps support), a code accepted in the step before, the current and the next one
(RFC 6238 §5.2: clock drift), and each time step accepted once (§5.2: "the verifier MUST NOT
accept the second attempt of the OTP after the successful validation has been issued for the
first OTP"): the step of a code that succeeds is recorded atomically (``TotpStore.use_step``),
so a code seen over a shoulder, or sent twice at once, works once.

The key (160 random bits, RFC 4226 §4) is sealed at rest (``core.secret_box``). Enrolment stores
an unconfirmed key; it becomes active when the user sends a code it produced.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

import pyotp

from tokensmith.core.models import TotpCredential
from tokensmith.core.ports import Stores
from tokensmith.core.secret_box import SecretBox, SecretBoxError

DIGITS = 6
INTERVAL = 30
WINDOW = 1
"""Steps accepted either side of the current one."""


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """What the enrolment page shows: the key (for typing) and the ``otpauth://`` URI (the QR
    code)."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


def normalize_code(value: str) -> str | None:
    """The digits of a typed code (spaces allowed, as apps group them); ``None`` when it is not
    a possible code."""
    code = "".join(value.split())
    return code if len(code) == DIGITS and code.isascii() and code.isdigit() else None


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The time step (within ``WINDOW`` of ``now``) whose code is ``code``; constant-time
    comparisons, every candidate compared."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = now // INTERVAL
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


class Totp:
    """The TOTP second factor (``core.mfa.SecondFactor``)."""

    name = "totp"
    amr = ("otp",)
    fallback = False

    def __init__(self, box: SecretBox, *, label: str) -> None:
        self.box = box
        self.label = label
        """The issuer name authenticator apps show next to the account."""

    async def is_enrolled(self, stores: Stores, user_id: str) -> bool:
        credential = await stores.totp.get(user_id)
        return credential is not None and credential.confirmed_at is not None

    async def verify(self, stores: Stores, user_id: str, response: str, *, now: int) -> bool:
        credential = await stores.totp.get(user_id)
        if credential is None or credential.confirmed_at is None:
            return False
        return await self.check(stores, credential, response, now=now)

    async def check(
        self, stores: Stores, credential: TotpCredential, response: str, *, now: int
    ) -> bool:
        """Whether ``response`` is a code of ``credential`` (confirmed or not) for a time step
        not used before; that step is then used."""
        code = normalize_code(response)
        if code is None:
            return False
        try:
            secret = self.box.open(credential.sealed_secret, owner=credential.user_id)
        except SecretBoxError:
            return False
        step = matching_step(secret, code, now)
        if step is None:
            return False
        if credential.last_step is not None and step <= credential.last_step:
            return False
        return await stores.totp.use_step(credential.user_id, step)

    async def begin(self, stores: Stores, user_id: str, account_name: str, now: int) -> TotpSetup:
        """A new unconfirmed key for the user (replacing an unconfirmed one). Raises
        ``ValueError`` when the user already has an active one."""
        secret = pyotp.random_base32()
        sealed = self.box.seal(secret, owner=user_id)
        if not await stores.totp.begin(user_id, sealed, now):
            raise ValueError("an authenticator is already set up")
        return TotpSetup(secret, self.uri(secret, account_name))

    async def pending(self, stores: Stores, user_id: str, account_name: str) -> TotpSetup | None:
        """The unconfirmed key, to show its page again; ``None`` if there is none."""
        credential = await stores.totp.get(user_id)
        if credential is None or credential.confirmed_at is not None:
            return None
        try:
            secret = self.box.open(credential.sealed_secret, owner=user_id)
        except SecretBoxError:
            return None
        return TotpSetup(secret, self.uri(secret, account_name))

    def uri(self, secret: str, account_name: str) -> str:
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
        return totp.provisioning_uri(name=account_name, issuer_name=self.label)
