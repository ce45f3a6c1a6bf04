"""Login throttling with back-off (OWASP ASVS 6.3; RFC 9700 does not cover the login page).

Failures are counted per account (the normalised login, known or not, so that throttling
reveals nothing about which accounts exist) and per client IP. After ``free_attempts`` failures,
each further attempt must wait ``base_delay * 2^(n - free_attempts)`` seconds (capped) after the
last failure. A success clears the account's counter. Pure: counts come from a store, time from
the caller.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FailureCount:
    count: int
    last_at: int


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    free_attempts: int
    base_delay: int
    max_delay: int

    def locked_until(self, record: FailureCount | None) -> int:
        """Unix time before which another attempt is refused (0 when not locked)."""
        if record is None or record.count < self.free_attempts:
            return 0
        exponent = min(record.count - self.free_attempts, 30)
        delay: int = min(self.base_delay * (1 << exponent), self.max_delay)
        return record.last_at + delay


ACCOUNT = BackoffPolicy(free_attempts=5, base_delay=2, max_delay=15 * 60)
ADDRESS = BackoffPolicy(free_attempts=50, base_delay=1, max_delay=15 * 60)
