"""The account page's security forms (issue 18): the user's sessions with "sign out everywhere",
password change (the current password required) and account deletion.

Every form is posted with the account page's CSRF token (checked at the edge). The two forms that
take the current password run like the login (``core.login``): a first transaction reserves the
attempt on the login counters (per address, then per account, keyed by the subject, so a stolen
session cannot guess the password faster than the login page allows); the password is verified
(``Accounts.verify_password``) and the new one hashed on the hashing pool with no transaction
held; a second transaction concludes, after checking that the password did not change meanwhile.

What each ends:

- **sign out everywhere**: every session of the user (this one included) and the grants made in
  them, except those with ``offline_access`` (as logout does);
- **password change**: every *other* session, and every grant (so every refresh token and
  recorded access token: what the old password let anyone obtain stops working); this browser
  stays signed in; the user is told by e-mail;
- **deletion**: every session, every grant, every consent, every second factor, pending link
  and sign-in transaction (``accounts.forget``), then the user (``Accounts.delete``: name,
  e-mail, password hash). Audit events stay without the client address, naming only the opaque
  subject;
- **e-mail change**: nothing yet: once the password is right, a link goes to the new address
  (``self_service.SelfService.request_email_change``); the change happens when it is used.

Password change, deletion and e-mail change need the ``UPDATE_PASSWORD``, ``DELETE`` and
``UPDATE_EMAIL`` capabilities of the accounts implementation (``core.accounts``); the page hides
them otherwise.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tokensmith.core import audit, throttle
from tokensmith.core.accounts import (
    DELETE,
    UPDATE_EMAIL,
    UPDATE_PASSWORD,
    Accounts,
    end_access,
    forget,
)
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import HashingBusy, NotSignedIn
from tokensmith.core.interaction import replace_session
from tokensmith.core.login import account_key
from tokensmith.core.models import Session, User
from tokensmith.core.password_rules import PasswordRules, WeakPassword
from tokensmith.core.ports import Stores
from tokensmith.core.self_service import AccountNotice, FormAnswer, Notifier, SelfService

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer

SESSION_ENDED = "session.ended_everywhere"
PASSWORD_CHANGED = "password.changed"
ACCOUNT_DELETED = audit.ACCOUNT_DELETED

WRONG_PASSWORD = "Your current password is not correct."
NOT_ALLOWED = "This account cannot be changed here."
NOT_SIGNED_IN = "Sign in first."
TOO_MANY = "Too many attempts. Wait a little and try again."


@dataclass(frozen=True, slots=True)
class SessionRow:
    signed_in_at: int
    expires_at: int
    current: bool
    methods: str

    @property
    def signed_in_utc(self) -> str:
        """When the session began, for the page (UTC, to the minute)."""
        moment = datetime.fromtimestamp(self.signed_in_at, tz=UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")


async def sessions(
    server: AuthorizationServer, stores: Stores, session: Session | None
) -> list[SessionRow]:
    """The signed-in user's live sessions, oldest first, this one marked."""
    if session is None:
        raise NotSignedIn(NOT_SIGNED_IN)
    return [
        SessionRow(
            s.auth_time,
            s.expires_at,
            hmac.compare_digest(s.digest, session.digest),
            " ".join(s.amr),
        )
        for s in await stores.sessions.list_for_user(session.user_id, server.now())
    ]


async def sign_out_everywhere(
    server: AuthorizationServer, stores: Stores, session: Session | None
) -> int:
    """End every session of the user (this one too) and revoke the grants made in them (but
    ``offline_access`` ones); the number of sessions ended."""
    if session is None:
        raise NotSignedIn(NOT_SIGNED_IN)
    now = server.now()
    # the codes issued so far and the sign-ins under way too; before the sessions are ended and
    # the grants revoked (``SecurityStampStore.renew``)
    await stores.security_stamps.renew(session.user_id)
    live = await stores.sessions.list_for_user(session.user_id, now)
    ended = await stores.sessions.delete_for_user(session.user_id)
    for s in live:
        await stores.grants.revoke_for_session(s.digest, now)
    server.audit(
        AuditEvent(SESSION_ENDED, now, user_id=session.user_id, detail={"sessions": str(ended)})
    )
    return ended


@dataclass(frozen=True, slots=True)
class PasswordForm:
    """A password-checked form admitted by the throttles (``answer`` is None), or stopped."""

    user: User | None
    address_key: str = ""
    account_key: str = ""
    answer: FormAnswer | None = None
    new_hash: str | None = field(default=None, repr=False)
    busy: bool = False
    """Step 2 was refused by the full hashing pool (``HashingBusy``): step 3 gives the
    reserved attempt back, so that a refusal counts on no throttle (as a refused login)."""


class AccountSecurity:
    def __init__(self, server: AuthorizationServer) -> None:
        self.server = server

    @property
    def accounts(self) -> Accounts:
        return self.server.accounts

    async def begin(
        self, stores: Stores, session: Session | None, capability: str, *, address: str
    ) -> PasswordForm:
        """Step 1 (first transaction): the user, the capability, the attempt reserved."""
        if session is None:
            raise NotSignedIn(NOT_SIGNED_IN)
        if capability not in self.accounts.capabilities:
            return PasswordForm(None, answer=FormAnswer(error=NOT_ALLOWED, status=403))
        user = await self.accounts.get(stores, session.user_id)
        if user is None or user.disabled:
            raise NotSignedIn(NOT_SIGNED_IN)
        now = self.server.now()
        address_key, key = "ip:" + address, account_key("", user)
        failures = stores.login_failures
        ttl = throttle.FAILURE_MEMORY
        by_address = await failures.reserve(address_key, now, policy=throttle.ADDRESS, ttl=ttl)
        if not by_address.granted:
            wait = throttle.ADDRESS.locked_until(by_address.record) - now
            return PasswordForm(user, answer=self._throttled(wait))
        by_account = await failures.reserve(key, now, policy=throttle.ACCOUNT, ttl=ttl)
        if not by_account.granted:
            await failures.release(address_key)
            wait = throttle.ACCOUNT.locked_until(by_account.record) - now
            return PasswordForm(user, answer=self._throttled(wait))
        return PasswordForm(user, address_key, key)

    def _throttled(self, wait: int) -> FormAnswer:
        self.server.audit(AuditEvent(audit.LOGIN_THROTTLED, self.server.now()))
        return FormAnswer(error=TOO_MANY, retry_after=max(1, wait), status=429)

    async def check(
        self,
        form: PasswordForm,
        current: str,
        new: str | None = None,
        *,
        rules: PasswordRules | None = None,
    ) -> PasswordForm:
        """Step 2 (no transaction): the current password on the hashing pool, and the new one
        checked against the rules and hashed there (``new``, for a password change)."""
        if form.user is None or form.answer is not None:
            return form
        try:
            return await self._check(form, current, new, rules=rules)
        except HashingBusy as exc:
            self.server.audit(AuditEvent(audit.LOGIN_BUSY, self.server.now(), user_id=form.user.id))
            answer = FormAnswer(
                error=(
                    "Too many people are signing in right now."
                    f" Wait {HashingBusy.RETRY_AFTER} seconds, then try again."
                ),
                status=exc.status_code,
                retry_after=HashingBusy.RETRY_AFTER,
            )
            return replace(form, answer=answer, busy=True)

    async def _check(
        self, form: PasswordForm, current: str, new: str | None, *, rules: PasswordRules | None
    ) -> PasswordForm:
        assert form.user is not None
        ok = await self.server.passwords.run(self.accounts.verify_password, form.user, current)
        if not ok.ok:
            return replace(form, answer=FormAnswer(error=WRONG_PASSWORD, status=400))
        if new is None or rules is None:
            return form
        try:
            await rules.check(new, context=(form.user.username, form.user.email, form.user.name))
        except WeakPassword as exc:
            return replace(form, answer=FormAnswer(error=str(exc), status=400))
        return replace(form, new_hash=await self.server.passwords.hash_async(new))

    async def _still_current(self, stores: Stores, form: PasswordForm) -> User | None:
        assert form.user is not None
        user = await self.accounts.get(stores, form.user.id)
        if user is None or user.disabled or user.password_hash != form.user.password_hash:
            return None
        return user

    async def _confirmed(self, stores: Stores, form: PasswordForm) -> User | FormAnswer:
        """Step 3's start: the refusal of step 2 (a wrong password audited), or the user, still
        with the password that was checked, whose attempt is released."""
        if form.answer is not None:
            if form.busy:  # nothing was checked: the attempt reserved in step 1 is given back
                await stores.login_failures.release(form.address_key)
                await stores.login_failures.release(form.account_key)
            if form.user is not None and form.answer.error == WRONG_PASSWORD:
                self.server.audit(
                    AuditEvent(audit.LOGIN_FAILED, self.server.now(), user_id=form.user.id)
                )
            return form.answer
        user = await self._still_current(stores, form)
        if user is None:
            return FormAnswer(error=WRONG_PASSWORD, status=400)
        await stores.login_failures.release(form.address_key)
        await stores.login_failures.clear(form.account_key)
        return user

    async def finish_password_change(
        self, stores: Stores, form: PasswordForm, session: Session, *, notify: Notifier
    ) -> FormAnswer:
        """Step 3 (second transaction): store the new hash, end the other sessions and every
        grant, cancel a pending e-mail change, tell the user."""
        user = await self._confirmed(stores, form)
        if isinstance(user, FormAnswer):
            return user
        if form.new_hash is None:  # pragma: no cover - step 2 hashes it or refuses
            return FormAnswer(error=WRONG_PASSWORD, status=400)
        now = self.server.now()
        await self.accounts.set_password_hash(stores, user.id, form.new_hash, now)
        # every other session, outstanding code, sign-in under way and grant ends (the stamp
        # before the sessions, ``accounts.end_access``); then, a privilege change, this session
        # goes on under a new id (W-30)
        await end_access(stores, user.id, now, keep_session=session.digest)
        _, change = await replace_session(
            stores,
            self.server.pepper,
            session,
            user_id=session.user_id,
            auth_time=session.auth_time,
            expires_at=session.expires_at,
            amr=session.amr,
            mfa_at=session.mfa_at,
        )
        for purpose in ("reset_password", "change_email"):
            await stores.account_tokens.revoke_for_user(user.id, purpose, now)
        self.server.audit(AuditEvent(PASSWORD_CHANGED, now, user_id=user.id))
        if user.email:
            notify(AccountNotice("password_changed", user.email, None, user.username))
        return FormAnswer(
            message="Your password is changed. Your other sessions are ended.", session=change
        )

    async def finish_deletion(self, stores: Stores, form: PasswordForm) -> FormAnswer:
        """Step 3 (second transaction): end and revoke everything of the user, then delete
        them; the audit keeps the event under the opaque subject only."""
        user = await self._confirmed(stores, form)
        if isinstance(user, FormAnswer):
            return user
        now = self.server.now()

        await self.accounts.delete(stores, user.id)
        await forget(stores, user.id, now)
        self.server.audit(AuditEvent(ACCOUNT_DELETED, now, user_id=user.id))
        return FormAnswer(message="Your account is deleted.")

    async def finish_email_change(
        self,
        stores: Stores,
        form: PasswordForm,
        email: str,
        *,
        self_service: SelfService,
        address: str,
        notify: Notifier,
    ) -> FormAnswer:
        """Step 3 (second transaction): with the password right, send the link that confirms
        ``email`` (``SelfService.new_email``'s) and tell the old address."""
        user = await self._confirmed(stores, form)
        if isinstance(user, FormAnswer):
            return user
        return await self_service.request_email_change(
            stores, user, email, address=address, notify=notify
        )


__all__ = [
    "ACCOUNT_DELETED",
    "DELETE",
    "PASSWORD_CHANGED",
    "SESSION_ENDED",
    "UPDATE_EMAIL",
    "UPDATE_PASSWORD",
    "AccountSecurity",
    "PasswordForm",
    "SessionRow",
    "sessions",
    "sign_out_everywhere",
]
