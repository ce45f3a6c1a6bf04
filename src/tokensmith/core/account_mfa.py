"""The account page's second factors (``core.mfa``): set up an authenticator app (TOTP, RFC
6238) with the password, confirm it with a code before it counts, see and replace recovery
codes, turn it off with the password and a code, add a passkey with the password. Setting up a
factor needs the password so that a password-only session alone (a stolen cookie, an
unattended browser) cannot lock the user out behind a factor of its own.

Every form that checks a code reserves the attempt on the second factor's throttling counters
first (``mfa.reserve_attempt``). Confirming the authenticator proves it: the session becomes
multi-factor (a new session id, ``amr`` with ``otp`` and ``mfa``), so the account page stays
open to the user who just set it up. Recovery codes are returned once, to be shown once; only
their digests are kept. Each change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tokensmith.core import audit, mfa, throttle
from tokensmith.core.account import fully_signed_in
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import NotSignedIn, SlowDown
from tokensmith.core.interaction import KEEP, SessionChange, replace_session
from tokensmith.core.models import Session, User
from tokensmith.core.passwords import PasswordCheck
from tokensmith.core.ports import Stores

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer

WRONG_CODE = "That code is not correct, or was used already."
WRONG_PASSWORD_OR_CODE = "The password or the code is not correct."
WRONG_PASSWORD = "The password is not correct."
ALREADY_ON = "Two-step verification is already on."


@dataclass(frozen=True, slots=True)
class TotpEnrolmentPage:
    """The set-up page: the key as a QR code (``uri``) and as text (``secret``), and the form
    that confirms it with a code."""

    username: str
    secret: str = field(repr=False)
    uri: str = field(repr=False)
    error: str | None = None
    status: int = 200
    retry_after: int = 0


@dataclass(frozen=True, slots=True)
class RecoveryCodesIssued:
    """New recovery codes, shown once; ``session``: the session cookie's change (enrolment)."""

    codes: tuple[str, ...] = field(repr=False)
    enrolled: bool = False
    session: SessionChange = KEEP


@dataclass(frozen=True, slots=True)
class Refused:
    """A form refused: the account page says why (401 wrong code, 429 too many attempts)."""

    error: str
    status: int
    retry_after: int = 0


@dataclass(frozen=True, slots=True)
class DisableStarted:
    """Step 1 of a form that needs the password (``begin_password_form``), committed before
    the password is checked: the user, and the attempt reserved or refused."""

    user: User
    session: Session
    address: str
    refused: Refused | None = None


def _too_many(retry_after: int) -> Refused:
    return Refused(
        f"Too many attempts. Wait {retry_after} seconds, then try again.", 429, retry_after
    )


async def _user(stores: Stores, session: Session) -> User:
    user = await stores.users.get(session.user_id)
    if user is None or user.disabled:
        raise NotSignedIn("This account is not available.")
    return user


async def begin_totp(
    server: AuthorizationServer,
    stores: Stores,
    started: DisableStarted,
    check: PasswordCheck,
) -> TotpEnrolmentPage | Refused:
    """A new (unconfirmed) authenticator key for the signed-in user, with the right password
    (the attempt reserved by ``begin_password_form``, the password checked by
    ``check_password``): a password-only session alone (a stolen cookie, an unattended browser)
    cannot put its own factor in front of the account."""
    now = server.now()
    user = started.user
    if not await _password_ok(stores, started, check):
        mfa.failed(server.audit, user.id, started.address, now, "totp_setup")
        return Refused(WRONG_PASSWORD, 401)
    await _password_passed(stores, started)
    try:
        setup = await server.totp.begin(stores, user.id, user.username, now)
    except ValueError:
        return Refused(ALREADY_ON, 409)
    return TotpEnrolmentPage(user.username, setup.secret, setup.uri)


async def _password_ok(stores: Stores, started: DisableStarted, check: PasswordCheck) -> bool:
    """The password was right, and is still the user's (the user is still there, enabled)."""
    current = await stores.users.get(started.user.id)
    return (
        check.ok
        and current is not None
        and not current.disabled
        and current.password_hash == started.user.password_hash
    )


async def _password_passed(stores: Stores, started: DisableStarted) -> None:
    """The reserved attempt released, the account's failures cleared (as after a code)."""
    await stores.login_failures.release(mfa.address_key(started.address))
    await stores.login_failures.clear(mfa.account_key(started.user.id))


async def totp_page(
    server: AuthorizationServer, stores: Stores, session: Session | None
) -> TotpEnrolmentPage | None:
    """The set-up page of the unconfirmed key again; ``None`` when there is none."""
    session = await fully_signed_in(server.factors, stores, session)
    user = await _user(stores, session)
    setup = await server.totp.pending(stores, user.id, user.username)
    if setup is None:
        return None
    return TotpEnrolmentPage(user.username, setup.secret, setup.uri)


async def confirm_totp(
    server: AuthorizationServer,
    stores: Stores,
    session: Session | None,
    code: str,
    *,
    address: str,
) -> TotpEnrolmentPage | RecoveryCodesIssued | None:
    """Activate the unconfirmed key with a code it produced: then new recovery codes, and the
    session becomes multi-factor. ``None``: there is no key being set up."""
    session = await fully_signed_in(server.factors, stores, session)
    user = await _user(stores, session)
    setup = await server.totp.pending(stores, user.id, user.username)
    credential = await stores.totp.get(user.id)
    if setup is None or credential is None:
        return None
    page = TotpEnrolmentPage(user.username, setup.secret, setup.uri)
    now = server.now()
    retry_after = await mfa.reserve_attempt(server.audit, stores, user.id, address, now)
    if retry_after:
        refused = _too_many(retry_after)
        return TotpEnrolmentPage(
            user.username,
            setup.secret,
            setup.uri,
            error=refused.error,
            status=429,
            retry_after=retry_after,
        )
    if not await server.totp.check(stores, credential, code[:200], now=now):
        mfa.failed(server.audit, user.id, address, now, server.totp.name)
        return TotpEnrolmentPage(
            user.username, setup.secret, setup.uri, error=WRONG_CODE, status=401
        )
    if not await stores.totp.confirm(user.id, now):
        return page
    await mfa.passed(server.audit, stores, user.id, address, now, server.totp)
    codes = await server.recovery_codes.replace(stores, user.id, now)
    server.audit(
        AuditEvent(
            audit.MFA_ENROLLED, now, user_id=user.id, address=address, detail={"factor": "totp"}
        )
    )
    change = await _multi_factor_session(server, stores, session, server.totp, now)
    return RecoveryCodesIssued(codes, enrolled=True, session=change)


async def _multi_factor_session(
    server: AuthorizationServer,
    stores: Stores,
    session: Session,
    factor: mfa.SecondFactor,
    now: int,
) -> SessionChange:
    """Replace the session by one (new id) that records the factor just proved."""
    _, change = await replace_session(
        stores,
        server.pepper,
        session,
        user_id=session.user_id,
        auth_time=session.auth_time,
        expires_at=session.expires_at,
        amr=mfa.with_factor(session.amr, factor),
        mfa_at=now,
    )
    return change


async def _prove(
    server: AuthorizationServer, stores: Stores, user_id: str, code: str, now: int
) -> mfa.SecondFactor | None:
    """The factor (an authenticator code or a recovery code) that ``code`` proves, used up."""
    for factor in await server.factors.enrolled(stores, user_id):
        if await factor.verify(stores, user_id, code[:200], now=now):
            return factor
    return None


async def regenerate_recovery_codes(
    server: AuthorizationServer,
    stores: Stores,
    session: Session | None,
    code: str,
    *,
    address: str,
) -> RecoveryCodesIssued | Refused:
    """New recovery codes (the old ones stop working), for a current code."""
    session = await fully_signed_in(server.factors, stores, session)
    user = await _user(stores, session)
    now = server.now()
    if not await server.factors.has_second_factor(stores, user.id):
        return Refused("Two-step verification is off.", 409)
    retry_after = await mfa.reserve_attempt(server.audit, stores, user.id, address, now)
    if retry_after:
        return _too_many(retry_after)
    factor = await _prove(server, stores, user.id, code, now)
    if factor is None:
        mfa.failed(server.audit, user.id, address, now, "code")
        return Refused(WRONG_CODE, 401)
    await mfa.passed(server.audit, stores, user.id, address, now, factor)
    codes = await server.recovery_codes.replace(stores, user.id, now)
    server.audit(
        AuditEvent(audit.MFA_RECOVERY_CODES_REGENERATED, now, user_id=user.id, address=address)
    )
    return RecoveryCodesIssued(codes)


async def begin_password_form(
    server: AuthorizationServer, stores: Stores, session: Session | None, *, address: str
) -> DisableStarted:
    """Step 1 of a form that needs the password (setting up an authenticator, adding or
    removing a passkey, turning two-step verification off), committed before the password is
    checked: the attempt reserved on the second factor's counters (or refused)."""
    session = await fully_signed_in(server.factors, stores, session)
    user = await _user(stores, session)
    retry_after = await mfa.reserve_attempt(server.audit, stores, user.id, address, server.now())
    refused = _too_many(retry_after) if retry_after else None
    return DisableStarted(user, session, address, refused)


async def check_password(
    server: AuthorizationServer, started: DisableStarted, password: str
) -> PasswordCheck:
    """Step 2, holding no transaction: argon2 on the worker pool."""
    return await server.passwords.check(started.user.password_hash, password[:1024])


async def give_back(stores: Stores, started: DisableStarted) -> None:
    """Step 2 was refused by the full hashing pool (``HashingBusy``): nothing was checked, so
    the attempt reserved in step 1 is given back (a refusal counts on no throttle, as a refused
    login)."""
    await stores.login_failures.release(mfa.address_key(started.address))
    await stores.login_failures.release(mfa.account_key(started.user.id))


async def finish_disable(
    server: AuthorizationServer,
    stores: Stores,
    started: DisableStarted,
    check: PasswordCheck,
    code: str,
) -> Refused | None:
    """Step 3: with the right password and a current code (or a recovery code), remove the
    authenticator and the recovery codes; ``None`` when done."""
    now = server.now()
    user = started.user
    password_ok = await _password_ok(stores, started, check)
    factor = await _prove(server, stores, user.id, code, now) if password_ok else None
    if factor is None:
        mfa.failed(server.audit, user.id, started.address, now, "disable")
        return Refused(WRONG_PASSWORD_OR_CODE, 401)
    await mfa.passed(server.audit, stores, user.id, started.address, now, factor)
    await stores.totp.delete(user.id)
    await stores.recovery_codes.delete_all(user.id)
    server.audit(
        AuditEvent(
            audit.MFA_DISABLED,
            now,
            user_id=user.id,
            address=started.address,
            detail={"factor": "totp"},
        )
    )
    return None


# -- passkeys (``core.passkeys``) -----------------------------------------------------------


PASSKEY_REGISTRATION = "passkey-options:user:"
"""The counter of the account page's passkey options requests (``login_failures``), per user."""


async def passkey_registration_options(
    server: AuthorizationServer, stores: Stores, session: Session | None
) -> str:
    """The ``navigator.credentials.create`` options for the signed-in user, bound to this
    session. Each request stores a challenge, so each is reserved on the user's counter
    (``PASSKEY_REGISTRATION``, the login's per-address back-off: 50 free, then a doubling
    wait): a session cannot fill the table with challenges (``SlowDown``, 429, none stored)."""
    session = await fully_signed_in(server.factors, stores, session)
    user = await _user(stores, session)
    now = server.now()
    reserved = await stores.login_failures.reserve(
        PASSKEY_REGISTRATION + user.id, now, policy=throttle.ADDRESS, ttl=throttle.FAILURE_MEMORY
    )
    if not reserved.granted:
        retry_after = max(1, throttle.ADDRESS.locked_until(reserved.record) - now)
        server.audit(AuditEvent(audit.LOGIN_THROTTLED, now, user_id=user.id))
        raise SlowDown(
            "too many passkey requests for this account",
            headers={"Retry-After": str(retry_after)},
        )
    return await server.passkeys.registration_options(
        stores, user_id=user.id, username=user.username, binding=session.digest, now=now
    )


async def register_passkey(
    server: AuthorizationServer,
    stores: Stores,
    started: DisableStarted,
    check: PasswordCheck,
    response: str,
    name: str,
) -> Refused | SessionChange:
    """Verify and store a new passkey, with the right password (the attempt reserved by
    ``begin_password_form``, the password checked by ``check_password``): a password-only
    session alone cannot add a passkey of its own. Done: the registration proved the passkey,
    so the session becomes multi-factor (a new id), as after confirming an authenticator
    app."""
    session, user, address = started.session, started.user, started.address
    now = server.now()
    if not await _password_ok(stores, started, check):
        mfa.failed(server.audit, user.id, address, now, "passkey_setup")
        return Refused(WRONG_PASSWORD, 401)
    await _password_passed(stores, started)
    added = await server.passkeys.register(
        stores,
        user_id=user.id,
        response=response,
        name=name,
        binding=session.digest,
        now=now,
        address=address,
    )
    if added is None:
        return Refused("That passkey could not be added. Try again.", 400)
    if mfa.is_multi_factor(session.amr):
        return KEEP
    return await _multi_factor_session(server, stores, session, server.passkeys, now)


async def finish_remove_passkey(
    server: AuthorizationServer,
    stores: Stores,
    started: DisableStarted,
    check: PasswordCheck,
    passkey_id: str,
) -> Refused | None:
    """Remove a passkey, with the right password (the attempt reserved by ``begin_password_form``);
    ``None`` when done."""
    now = server.now()
    user = started.user
    password_ok = await _password_ok(stores, started, check)
    if not password_ok:
        mfa.failed(server.audit, user.id, started.address, now, "passkey_remove")
        return Refused(WRONG_PASSWORD, 401)
    await _password_passed(stores, started)
    if not await stores.passkeys.delete(user.id, passkey_id[:64]):
        return Refused("There is no such passkey.", 404)
    server.audit(
        AuditEvent(
            audit.PASSKEY_REMOVED,
            now,
            user_id=user.id,
            address=started.address,
            detail={"passkey": passkey_id[:64]},
        )
    )
    return None
