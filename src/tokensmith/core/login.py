"""Password login at the login page (OWASP ASVS 6.3; checklist W-19 to W-25).

Three steps, which the route runs around two short transactions so that no transaction (and on
SQLite, whose one connection every request shares, no connection) is held while argon2 runs:

1. ``reserve``, in the first transaction, committed before step 2: resolve the typed login to
   an account, read its security stamp (``ports.SecurityStampStore.current``: the credential
   state the password is checked against; the sign-in makes its session only while the stamp
   is still that one, ``core.interaction``) and reserve the attempt, first on the client
   address's counter, then on the account's (``core.throttle``). Each reservation is one
   atomic increment-and-check in the store, so of any number of concurrent attempts at most
   the policy's allowance is checked; an attempt over the limit is refused here, its password
   never verified.
2. ``verify``, with nothing held: the account's password verification (``core.accounts``:
   argon2 for tokensmith's own users, whatever an application's own implementation does), and
   the re-hash of an outdated hash, on the server's worker pool, off the event loop. An
   unknown or disabled account is verified against a dummy argon2 hash: the same work.
3. ``conclude``, in the second transaction: on a match, the user is read again (disabled, or
   its password changed, since step 1: the attempt fails), the account's counter is cleared,
   the address's reservation given back and an upgraded hash stored.

The account's counter is keyed by the user id once the login names an account, whichever of
its names (username or e-mail, in any case or width) was typed; an unknown login by its
normalised form, so throttling tells nothing about which accounts exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tokensmith.core import audit, throttle
from tokensmith.core.accounts import UPDATE_PASSWORD, Accounts, StoreAccounts
from tokensmith.core.audit import AuditEvent, AuditSink
from tokensmith.core.clock import Clock
from tokensmith.core.models import User
from tokensmith.core.passwords import Admission, PasswordCheck, Passwords, normalize_login
from tokensmith.core.ports import Stores


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """An attempt whose place in the counters is reserved (``retry_after == 0``) or refused."""

    at: int
    address: str
    address_key: str
    account_key: str
    user: User | None
    """The account the login names (also a disabled one); ``None`` for an unknown login."""
    retry_after: int = 0
    """Seconds to wait when the attempt was refused by the back-off (its password unchecked)."""
    stamp: int = 0
    """The account's security stamp, read just after the account: an event that renews it
    later (a password changed or reset, the account's access ended) refuses the sign-in when
    it would make its session (``core.interaction``). An event committed between the two
    reads is older than the stamp; if it changed the password, step 3 sees the hash changed."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User | None
    retry_after: int = 0


def account_key(login: str, user: User | None) -> str:
    """The counter of the account a login names: its user id, or the normalised login."""
    if user is not None:
        return "user:" + user.id
    try:
        return "login:" + normalize_login(login)
    except ValueError:  # not a possible login name: counted as typed (trimmed)
        return "login:" + login.strip()[:200]


class PasswordLogin:
    def __init__(
        self,
        *,
        passwords: Passwords,
        clock: Clock,
        audit: AuditSink,
        accounts: Accounts | None = None,
    ) -> None:
        self.passwords = passwords
        self.accounts: Accounts = accounts if accounts is not None else StoreAccounts(passwords)
        self.clock = clock
        self.audit = audit

    async def reserve(self, login: str, stores: Stores, *, address: str) -> LoginAttempt:
        """Step 1: the account, and the attempt reserved on both counters (or refused)."""
        now = int(self.clock())
        try:
            normalized: str | None = normalize_login(login)
        except ValueError:
            normalized = None
        user = await self.accounts.find_by_login(stores, normalized) if normalized else None
        # the same read either way (matching no row for an unknown login)
        stamp = await stores.security_stamps.current(user.id if user else "-")
        attempt = LoginAttempt(
            at=now,
            address=address,
            address_key="ip:" + address,
            account_key=account_key(login, user),
            user=user,
            stamp=stamp,
        )
        # the address first: a refused address never touches the account's counter, so a
        # throttled sprayer cannot spend a victim's attempts; a refused account gives the
        # address its reservation back (no password was checked)
        failures = stores.login_failures
        by_address = await failures.reserve(
            attempt.address_key, now, policy=throttle.ADDRESS, ttl=throttle.FAILURE_MEMORY
        )
        if not by_address.granted:
            return self._refused(attempt, throttle.ADDRESS.locked_until(by_address.record))
        by_account = await failures.reserve(
            attempt.account_key, now, policy=throttle.ACCOUNT, ttl=throttle.FAILURE_MEMORY
        )
        if not by_account.granted:
            await failures.release(attempt.address_key)
            return self._refused(attempt, throttle.ACCOUNT.locked_until(by_account.record))
        return attempt

    def _refused(self, attempt: LoginAttempt, locked_until: int) -> LoginAttempt:
        self.audit(AuditEvent(audit.LOGIN_THROTTLED, attempt.at, address=attempt.address))
        return dataclasses.replace(attempt, retry_after=max(1, locked_until - attempt.at))

    async def verify(
        self, attempt: LoginAttempt, password: str, admission: Admission | None = None
    ) -> PasswordCheck:
        """Step 2, holding no transaction: the accounts' ``verify_password`` on the hashing
        pool; an unknown or disabled account costs an argon2 verification of the dummy hash.
        ``admission``: the pool's place taken before step 1 (``Passwords.admit``)."""
        user = attempt.user
        if user is None or user.disabled:
            return await self.passwords.check(None, password, admission=admission)
        return await self.passwords.run(
            self.accounts.verify_password, user, password, admission=admission
        )

    async def conclude(
        self, attempt: LoginAttempt, check: PasswordCheck, stores: Stores
    ) -> LoginResult:
        """Step 3: the user on success (counters cleared, hash upgraded), else ``None``."""
        now = int(self.clock())
        user = attempt.user
        if check.ok and user is not None:
            current = await self.accounts.get(stores, user.id)
            if (
                current is not None
                and not current.disabled
                and current.password_hash == user.password_hash
            ):
                await stores.login_failures.release(attempt.address_key)
                await stores.login_failures.clear(attempt.account_key)
                if check.new_hash is not None and UPDATE_PASSWORD in self.accounts.capabilities:
                    await self.accounts.set_password_hash(stores, user.id, check.new_hash, now)
                self.audit(
                    AuditEvent(audit.LOGIN_SUCCEEDED, now, user_id=user.id, address=attempt.address)
                )
                return LoginResult(current)
        self.audit(
            AuditEvent(
                audit.LOGIN_FAILED,
                now,
                user_id=user.id if user else None,
                address=attempt.address,
            )
        )
        return LoginResult(None)
