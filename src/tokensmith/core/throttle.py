"""Login throttling with back-off (OWASP ASVS 6.3; RFC 9700 does not cover the login page).

Attempts are counted per account and per client address. The account is the user id once the
login names an account (whichever of its names was typed); an unknown login is counted under
its normalised form, so that throttling behaves the same for accounts that do not exist. After
``free_attempts`` counted attempts, each further one must wait ``base_delay * 2^(n -
free_attempts)`` seconds (capped at ``max_delay``) after the last one: a back-off, not a hard
lock. Counters are forgotten an hour after their last attempt.

An attempt is *reserved* before its password is checked: the store counts it and answers in one
atomic step (``LoginFailureStore.reserve``), refusing it without counting when the back-off is
running. Concurrent attempts therefore cannot all read "not locked" before any of them is
counted: at most ``free_attempts`` passwords are checked before the first wait, however many
arrive at once. A success clears the account's counter and gives back its reservation on the
address. Pure: counts come from a store, time from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_MEMORY = 3600
"""Seconds after the last counted attempt that a counter is forgotten."""


@dataclass(frozen=True, slots=True)
class FailureCount:
    count: int
    last_at: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The store's answer to ``reserve``: the attempt may go ahead (and is counted), or not."""

    granted: bool
    record: FailureCount
    """The counter after the reservation (granted), or as it stands (refused)."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    free_attempts: int
    base_delay: int
    max_delay: int

    def delay(self, count: int) -> int:
        """Seconds that must pass after the last attempt when ``count`` attempts are on record."""
        if count < self.free_attempts:
            return 0
        exponent = min(count - self.free_attempts, 30)
        return min(self.base_delay * (1 << exponent), self.max_delay)

    def steps(self) -> tuple[int, ...]:
        """``delay(free_attempts + i)`` for ``i = 0, 1, ...`` up to the first ``max_delay``,
        which holds for every higher count: the whole policy as a table, for stores that
        decide atomically (a SQL ``CASE``, a Lua script)."""
        out = [self.delay(self.free_attempts)]
        while out[-1] < self.max_delay and len(out) <= 31:
            out.append(self.delay(self.free_attempts + len(out)))
        return tuple(out)

    def locked_until(self, record: FailureCount | None) -> int:
        """Unix time before which another attempt is refused (0 when not locked)."""
        if record is None or record.count < self.free_attempts:
            return 0
        return record.last_at + self.delay(record.count)

    def admits(self, record: FailureCount | None, now: int) -> bool:
        """Whether another attempt may be made at ``now`` (what ``reserve`` decides)."""
        return self.locked_until(record) <= now


ACCOUNT = BackoffPolicy(free_attempts=5, base_delay=2, max_delay=15 * 60)
ADDRESS = BackoffPolicy(free_attempts=50, base_delay=1, max_delay=15 * 60)

# The account forms of core.self_service that send e-mail (sign-up, forgotten password,
# verification): per address, and per account (the normalised address typed). Every request is
# counted (none is given back): three links per account, then one a minute, doubling to an hour.
MAIL_ACCOUNT = BackoffPolicy(free_attempts=3, base_delay=60, max_delay=3600)
MAIL_ADDRESS = BackoffPolicy(free_attempts=20, base_delay=10, max_delay=3600)
