"""Second factors at sign-in: what the login step needs of a factor, which factors a user has,
and when a request needs one (NIST SP 800-63B §4.2; OpenID Connect Core §2, §3.1.2.1; RFC 8176).

A factor is anything that implements :class:`SecondFactor`: a name, the ``amr`` values it
yields (RFC 8176: ``otp`` for a TOTP or a recovery code; a passkey would say ``hwk``/``swk``),
whether the user has it, and ``verify``, which checks what the user sent and consumes what must
be single-use, atomically. :class:`Factors` is the registry the server holds; adding a factor is
registering one more object (``AuthorizationServer(factors=...)``).

When a second factor is asked for (``needs_second_factor``):

- a user who has one (a *primary* factor: recovery codes are only a fallback) always presents
  it at sign-in: the password alone never makes a session for them;
- so a single-factor session of such a user (one signed in before the factor was added, in
  another browser) is stepped up before it is used again, whatever the request; ``acr_values``
  naming :data:`ACR_MULTI_FACTOR` asks for the same and, being voluntary (OpenID Connect Core
  §3.1.2.1), lets a user without a factor continue single-factor: the ``acr`` claim says so;
- the server's ``mfa_required`` policy refuses a user without a factor: the client gets
  ``unmet_authentication_requirements`` (they enrol on the account page first).

A session that passed a second factor carries ``mfa`` in its ``amr`` (with the factor's own
values) and the time in ``mfa_at``; ID tokens carry that ``amr`` and the ``acr`` it amounts to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from tokensmith.core import audit, throttle
from tokensmith.core.audit import AuditEvent, AuditSink
from tokensmith.core.models import Session
from tokensmith.core.ports import Stores

MFA = "mfa"
"""RFC 8176 §2: multiple-factor authentication."""
ACR_SINGLE_FACTOR = "urn:tokensmith:acr:sfa"
"""The ``acr`` of a sign-in with one factor (a password)."""
ACR_MULTI_FACTOR = "urn:tokensmith:acr:mfa"
"""The ``acr`` of a sign-in with a password and a second factor."""
ACR_VALUES_SUPPORTED = (ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR)


class SecondFactor(Protocol):
    """What the login step needs of a second factor."""

    @property
    def name(self) -> str:
        """The form's name for it (``totp``, ``recovery_code``)."""
        ...

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176 values a successful use adds to the session."""
        ...

    @property
    def fallback(self) -> bool:
        """Only a backup of the others (recovery codes): having it alone asks for nothing."""
        ...

    async def is_enrolled(self, stores: Stores, user_id: str) -> bool: ...

    async def verify(self, stores: Stores, user_id: str, response: str, *, now: int) -> bool:
        """Whether ``response`` (what the user sent) proves the factor now; anything
        single-use (a time step, a recovery code) is consumed atomically on success."""
        ...


class Factors:
    """The server's second factors, in the order the login step offers them."""

    def __init__(self, factors: Iterable[SecondFactor]) -> None:
        self.all: tuple[SecondFactor, ...] = tuple(factors)
        names = [f.name for f in self.all]
        if len(set(names)) != len(names):
            raise ValueError("two second factors have the same name")

    def get(self, name: str) -> SecondFactor | None:
        return next((f for f in self.all if f.name == name), None)

    async def enrolled(self, stores: Stores, user_id: str) -> tuple[SecondFactor, ...]:
        """The factors the user can present: the primary ones they have and, when there is
        one, the fallbacks they have. Empty: the user has no second factor."""
        primary = [f for f in self.all if not f.fallback and await f.is_enrolled(stores, user_id)]
        if not primary:
            return ()
        fallbacks = [f for f in self.all if f.fallback and await f.is_enrolled(stores, user_id)]
        return (*primary, *fallbacks)

    async def has_second_factor(self, stores: Stores, user_id: str) -> bool:
        for factor in self.all:
            if not factor.fallback and await factor.is_enrolled(stores, user_id):
                return True
        return False


def is_multi_factor(amr: Sequence[str]) -> bool:
    return MFA in amr


def acr_for(amr: Sequence[str]) -> str:
    """The ``acr`` claim that honestly describes a sign-in with these methods."""
    return ACR_MULTI_FACTOR if is_multi_factor(amr) else ACR_SINGLE_FACTOR


def with_factor(amr: Sequence[str], factor: SecondFactor) -> tuple[str, ...]:
    """The ``amr`` of a session after ``factor`` was presented: its methods, the factor's,
    and ``mfa``, each once, in that order."""
    return tuple(dict.fromkeys((*amr, *factor.amr, MFA)))


def check_acr_values(values: tuple[str, ...]) -> tuple[str, ...]:
    """``acr_values`` are voluntary (OpenID Connect Core §3.1.2.1): unknown ones are ignored."""
    return tuple(v for v in values if v in ACR_VALUES_SUPPORTED)


async def needs_second_factor(
    factors: Factors, stores: Stores, session: Session, *, required_by_policy: bool
) -> bool | None:
    """Whether ``session`` must present a second factor before it is used: ``True`` (the
    login step), ``False`` (it will do), or ``None`` when a factor is required and the user
    has none (``unmet_authentication_requirements``)."""
    if is_multi_factor(session.amr):
        return False
    if await factors.has_second_factor(stores, session.user_id):
        return True
    return None if required_by_policy else False


# -- attempts ---------------------------------------------------------------------------------
# Every form that checks a second factor (the sign-in's second step, enrolment, disabling,
# new recovery codes) reserves the attempt first, on the account's and on the address's counter
# (``core.throttle``, the password login's machinery, on counters of their own): 5 free
# attempts per account, then a doubling wait. A 6-digit code has 3 valid values in its window,
# so an attacker who knows the password gets a handful of guesses per quarter hour, not 10^6.


def account_key(user_id: str) -> str:
    return "mfa:user:" + user_id


def address_key(address: str) -> str:
    return "mfa:ip:" + address


async def reserve_attempt(
    sink: AuditSink, stores: Stores, user_id: str, address: str, now: int
) -> int:
    """Reserve one attempt: ``0`` when it may go ahead (it is counted), else the seconds to
    wait (nothing is checked; audited ``mfa.throttled``)."""
    failures = stores.login_failures
    by_address = await failures.reserve(
        address_key(address), now, policy=throttle.ADDRESS, ttl=throttle.FAILURE_MEMORY
    )
    locked_until = 0
    if not by_address.granted:
        locked_until = throttle.ADDRESS.locked_until(by_address.record)
    else:
        by_account = await failures.reserve(
            account_key(user_id), now, policy=throttle.ACCOUNT, ttl=throttle.FAILURE_MEMORY
        )
        if not by_account.granted:
            await failures.release(address_key(address))
            locked_until = throttle.ACCOUNT.locked_until(by_account.record)
    if not locked_until:
        return 0
    sink(AuditEvent(audit.MFA_THROTTLED, now, user_id=user_id, address=address))
    return max(1, locked_until - now)


def failed(sink: AuditSink, user_id: str, address: str, now: int, factor: str) -> None:
    """A wrong, replayed or unknown code: the attempt stays counted; audited."""
    sink(
        AuditEvent(
            audit.MFA_FAILED, now, user_id=user_id, address=address, detail={"factor": factor}
        )
    )


async def passed(
    sink: AuditSink,
    stores: Stores,
    user_id: str,
    address: str,
    now: int,
    factor: SecondFactor,
) -> None:
    """A factor proved: the account's counter is cleared and the address's reservation given
    back; audited (a recovery code also as ``mfa.recovery_code_used``)."""
    await stores.login_failures.release(address_key(address))
    await stores.login_failures.clear(account_key(user_id))
    detail = {"factor": factor.name}
    sink(AuditEvent(audit.MFA_SUCCEEDED, now, user_id=user_id, address=address, detail=detail))
    if factor.fallback:
        sink(
            AuditEvent(
                audit.MFA_RECOVERY_CODE_USED, now, user_id=user_id, address=address, detail=detail
            )
        )
