"""Self-service accounts by e-mail: sign-up, e-mail verification and the forgotten password
(OWASP ASVS 6.4 and the Forgot Password Cheat Sheet; NIST SP 800-63B-4 §3.1.1.2 for the password
chosen). Each is switched on by the operator (``core.policy.AccountPolicy``).

The links. Each link carries a 256-bit random secret behind a prefix naming its purpose
(``ts_su_`` sign-up, ``ts_ev_`` e-mail verification, ``ts_pr_`` password reset); only its HMAC
digest under the server pepper is stored (``ports.AccountTokenStore``). A link is single-use (an
atomic ``UPDATE ... WHERE used_at IS NULL``) and expires (``signup_ttl``,
``email_verification_ttl``, ``password_reset_ttl``: 30 minutes by default). Opening a link shows a
page with a button; only the button's POST (with its CSRF token) uses the link, so a mail
scanner that fetches every link of a message uses none.

No enumeration. Every form that names an account answers the same whether or not the account
exists, and does the same work before answering:

- **Sign-up** does not create the account: it hashes the password, then sends a link to the
  address. For a new address the link carries the pending registration; for an address that has
  an account already, the message says so (and points to the forgotten-password page) instead.
  The page says "check your mailbox" either way. The account is created, its address verified,
  when the link is used, so nobody can claim an address they cannot read (account
  pre-hijacking) and the page tells nothing about who has an account.
- **Forgotten password** answers "if an account uses this address, we sent a link" for every
  address, after the same store work (the unknown case makes the same ``UPDATE``, matching no
  row). The messages are sent by a background queue (``Notifier`` never blocks), so a slow mail
  server delays nobody's answer and tells nothing.

Throttling. The forms that send mail reserve one attempt per client address and one per account
(the normalised address or login typed, so unknown accounts are counted alike) on the login
counters (``core.throttle.MAIL_ADDRESS``, ``MAIL_ACCOUNT``) before anything else.

After a reset: the password is replaced, every session of the user ends, every grant (so every
refresh token and recorded access token) is revoked, other reset links die, the account's login
back-off is cleared, the address counts as verified (the link proved it can be read), and the
user is told by e-mail.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from tokensmith.core import audit, throttle
from tokensmith.core.accounts import end_access
from tokensmith.core.audit import AuditEvent
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import NotSignedIn
from tokensmith.core.models import AccountToken, Session, User
from tokensmith.core.password_rules import PasswordRules, WeakPassword
from tokensmith.core.passwords import Passwords, check_single_script, normalize_login
from tokensmith.core.ports import Conflict, Stores
from tokensmith.core.secrets import digest, new_secret

SIGNUP_PREFIX = "ts_su_"
VERIFY_EMAIL_PREFIX = "ts_ev_"
RESET_PASSWORD_PREFIX = "ts_pr_"
PURPOSES = {
    SIGNUP_PREFIX: "signup",
    VERIFY_EMAIL_PREFIX: "verify_email",
    RESET_PASSWORD_PREFIX: "reset_password",
}

SIGNUP_SENT = (
    "Check your mailbox: we sent a message to {email}. Follow its link to finish creating your "
    "account."
)
RESET_SENT = (
    "If an account uses this address or name, we sent it a link to choose a new password. "
    "The link works once, within {minutes} minutes."
)
VERIFICATION_SENT = "We sent a link to {email}. Follow it to confirm your address."
TOO_MANY = "Too many requests. Wait a little and try again."
LINK_INVALID = (
    "This link is not valid any more: it was used already, it expired, or it was copied "
    "incompletely. Ask for a new one."
)


@dataclass(frozen=True, slots=True)
class AccountNotice:
    """A message for a person, which the server's mailer renders and sends in the background.

    ``kind``: ``signup`` (the link that creates the account), ``signup_existing`` (someone tried
    to sign up with an address that has an account), ``verify_email``, ``reset_password``,
    ``password_changed``."""

    kind: str
    to: str
    link: str | None = field(default=None, repr=False)
    username: str | None = None
    valid_minutes: int = 0


Notifier = Callable[[AccountNotice], None]
"""Queues a notice and returns at once (never waits for a mail server)."""


def discard_notice(notice: AccountNotice) -> None:
    """The notifier of a server that sends no e-mail."""


@dataclass(frozen=True, slots=True)
class Links:
    """The absolute URLs the messages link to (built at the edge from the settings)."""

    confirm: str
    """Where sign-up and verification links lead (``?token=...``)."""
    reset: str
    """Where reset links lead (``?token=...``)."""
    forgot: str
    login: str


@dataclass(frozen=True, slots=True)
class FormAnswer:
    """What a page shows after a form: a message (the same for every account), a refusal the
    person can correct (``error``), or a wait (``retry_after`` seconds, with ``TOO_MANY``)."""

    message: str | None = None
    error: str | None = None
    retry_after: int = 0
    status: int = 200


@dataclass(frozen=True, slots=True)
class SignupStart:
    """A sign-up admitted by the throttles and the operator's rules; its password is next."""

    email: str
    name: str | None
    answer: FormAnswer | None = None
    """Set when the sign-up stops here (refused, throttled)."""


@dataclass(frozen=True, slots=True)
class ResetStart:
    """A reset form whose link is (still) valid; its new password is next."""

    secret: str = field(repr=False)
    user: User | None
    answer: FormAnswer | None = None


@dataclass(frozen=True, slots=True)
class LinkView:
    """What the page of a link shows before its button is pressed."""

    purpose: str | None
    """``None``: the link is not valid (``LINK_INVALID``)."""
    email: str = ""


def _purpose(secret: str) -> str | None:
    for prefix, purpose in PURPOSES.items():
        if secret.startswith(prefix) and len(secret) < 100:
            return purpose
    return None


def normalize_email(value: str) -> str:
    """A normalised e-mail address (``passwords.normalize_login``) with one ``@``, a local part
    and a dotted domain; ``ValueError`` otherwise."""
    email = normalize_login(value)
    local, at, domain = email.rpartition("@")
    if not at or not local or "@" in local or "." not in domain.strip("."):
        raise ValueError("not an e-mail address")
    if len(email) > 320:
        raise ValueError("an e-mail address has at most 320 characters")
    return email


def username_for(email: str) -> str:
    """A username for a new account: the address's local part, reduced to ``a-z 0-9 . _ -``,
    and a random suffix (people sign in with their address; the username is only a handle)."""
    base = re.sub(r"[^a-z0-9._-]+", "-", email.split("@", 1)[0].lower()).strip("-._")[:40]
    return f"{base or 'user'}-{secrets.token_hex(3)}"


class SelfService:
    def __init__(
        self,
        *,
        context: ServerContext,
        passwords: Passwords,
        rules: PasswordRules,
        links: Links,
    ) -> None:
        self.context = context
        self.passwords = passwords
        self.rules = rules
        self.links = links

    # -- throttling ---------------------------------------------------------------------------

    async def _admit(self, stores: Stores, *, address: str, account: str, now: int) -> int:
        """Reserve one attempt for the address, then for the account: 0, or seconds to wait."""
        failures = stores.login_failures
        ttl = throttle.FAILURE_MEMORY
        by_address = await failures.reserve(
            "mail-ip:" + address, now, policy=throttle.MAIL_ADDRESS, ttl=ttl
        )
        if not by_address.granted:
            locked = throttle.MAIL_ADDRESS.locked_until(by_address.record)
        else:
            by_account = await failures.reserve(
                "mail:" + account, now, policy=throttle.MAIL_ACCOUNT, ttl=ttl
            )
            if by_account.granted:
                return 0
            locked = throttle.MAIL_ACCOUNT.locked_until(by_account.record)
        self.context.emit(AuditEvent(audit.ACCOUNT_FORM_THROTTLED, now, address=address))
        return max(1, locked - now)

    def _throttled(self, retry_after: int) -> FormAnswer:
        return FormAnswer(error=TOO_MANY, retry_after=retry_after, status=429)

    def _new_link(
        self, prefix: str, *, email: str, user_id: str | None, ttl: int, now: int, **data: str
    ) -> tuple[str, AccountToken]:
        secret = new_secret(prefix)
        token = AccountToken(
            digest=digest(secret, self.context.pepper),
            purpose=PURPOSES[prefix],
            email=email,
            user_id=user_id,
            created_at=now,
            expires_at=now + ttl,
            data=data,
        )
        return secret, token

    # -- passwords ----------------------------------------------------------------------------

    async def choose_password(self, password: str, *, context: tuple[str | None, ...]) -> str:
        """The hash of a new password that keeps the rules (``WeakPassword`` otherwise), made on
        the server's hashing pool. Call it with no transaction open."""
        await self.rules.check(password, context=context)
        return await self.passwords.hash_async(password)

    # -- sign-up ------------------------------------------------------------------------------

    async def begin_signup(
        self, stores: Stores, *, email: str, name: str, address: str
    ) -> SignupStart:
        """Step 1 of a sign-up, in a first transaction: the operator's rules and the throttles."""
        accounts = self.context.policy.accounts
        now = self.context.now()
        if not accounts.signup_open:
            return SignupStart("", None, FormAnswer(error="Sign-up is closed.", status=403))
        try:
            normalized = normalize_email(email)
        except ValueError:
            return SignupStart("", None, FormAnswer(error="Enter a valid e-mail address."))
        clean_name = " ".join(name.split())[:200] or None
        wait = await self._admit(stores, address=address, account=normalized, now=now)
        if wait:
            return SignupStart(normalized, clean_name, self._throttled(wait))
        domain = normalized.rsplit("@", 1)[1]
        if accounts.signup == "domains" and domain not in accounts.signup_domains:
            allowed = ", ".join(sorted(accounts.signup_domains))
            return SignupStart(
                normalized,
                clean_name,
                FormAnswer(error=f"Sign-up is open to addresses at {allowed} only.", status=403),
            )
        return SignupStart(normalized, clean_name)

    async def finish_signup(
        self, stores: Stores, start: SignupStart, password_hash: str, *, notify: Notifier
    ) -> FormAnswer:
        """Step 3, in a second transaction: a link that creates the account, or (for an address
        with an account) a message saying so; the same answer either way."""
        accounts = self.context.policy.accounts
        now = self.context.now()
        existing = await stores.users.find_by_login(start.email)
        if existing is not None:
            notify(
                AccountNotice(
                    "signup_existing", start.email, self.links.forgot, username=existing.username
                )
            )
        else:
            data = {"password_hash": password_hash}
            if start.name:
                data["name"] = start.name
            secret, token = self._new_link(
                SIGNUP_PREFIX,
                email=start.email,
                user_id=None,
                ttl=accounts.signup_ttl,
                now=now,
                **data,
            )
            await stores.account_tokens.create(token)
            notify(
                AccountNotice(
                    "signup",
                    start.email,
                    f"{self.links.confirm}?token={secret}",
                    valid_minutes=accounts.signup_ttl // 60,
                )
            )
        self.context.emit(
            AuditEvent(
                audit.SIGNUP_REQUESTED,
                now,
                user_id=existing.id if existing else None,
                detail={"existing": "yes" if existing else "no"},
            )
        )
        return FormAnswer(message=SIGNUP_SENT.format(email=start.email))

    # -- the page of a link -------------------------------------------------------------------

    async def view_link(self, stores: Stores, secret: str) -> LinkView:
        """Whether a link from a message is valid (nothing is used: the page's button uses it)."""
        purpose = _purpose(secret)
        if purpose is None:
            return LinkView(None)
        token = await stores.account_tokens.get(
            digest(secret, self.context.pepper), purpose, self.context.now()
        )
        if token is None:
            return LinkView(None)
        if token.user_id is not None:  # a link for an account: still its address, still enabled
            user = await stores.users.get(token.user_id)
            if user is None or user.disabled or user.email != token.email:
                return LinkView(None)
        return LinkView(purpose, token.email)

    async def confirm(self, stores: Stores, secret: str) -> FormAnswer:
        """The button of a sign-up or verification link: create the account (its address
        verified), or mark the user's address verified. The link is used either way."""
        purpose = _purpose(secret)
        now = self.context.now()
        if purpose not in ("signup", "verify_email"):
            return FormAnswer(error=LINK_INVALID, status=400)
        token = await stores.account_tokens.consume(
            digest(secret, self.context.pepper), purpose, now
        )
        if token is None:
            return FormAnswer(error=LINK_INVALID, status=400)
        if purpose == "signup":
            return await self._create_account(stores, token, now)
        user = await stores.users.get(token.user_id or "")
        if user is None or user.email != token.email:
            return FormAnswer(error=LINK_INVALID, status=400)
        await stores.users.set_profile(
            user.id, name=user.name, email=user.email, email_verified=True, now=now
        )
        self.context.emit(AuditEvent(audit.EMAIL_VERIFIED, now, user_id=user.id))
        return FormAnswer(message=f"Thank you: {user.email} is confirmed.")

    async def _create_account(self, stores: Stores, token: AccountToken, now: int) -> FormAnswer:
        if await stores.users.find_by_login(token.email) is not None:
            return FormAnswer(message="This address has an account already: sign in with it.")
        for _ in range(5):
            username = username_for(token.email)
            check_single_script(username)
            user = User(
                id=str(uuid.uuid4()),
                username=username,
                email=token.email,
                email_verified=True,
                name=token.data.get("name"),
                disabled=False,
                password_hash=token.data["password_hash"],
                created_at=now,
                updated_at=now,
            )
            try:
                await stores.users.create(user)
            except Conflict:  # the random username was taken: another one
                if await stores.users.find_by_login(token.email) is not None:
                    return FormAnswer(message="This address has an account already: sign in.")
                continue
            self.context.emit(AuditEvent(audit.ACCOUNT_CREATED, now, user_id=user.id))
            self.context.emit(AuditEvent(audit.EMAIL_VERIFIED, now, user_id=user.id))
            return FormAnswer(
                message=f"Your account is ready. Sign in with {token.email} and your password."
            )
        raise Conflict("no free username")  # pragma: no cover - five 24-bit collisions

    # -- e-mail verification (signed-in user) -------------------------------------------------

    async def request_verification(
        self, stores: Stores, session: Session | None, *, address: str, notify: Notifier
    ) -> FormAnswer:
        """Send the signed-in user a link that confirms their (unverified) address."""
        accounts = self.context.policy.accounts
        if session is None:
            raise NotSignedIn("Sign in to confirm your e-mail address.")
        now = self.context.now()
        user = await stores.users.get(session.user_id)
        if not accounts.verification_open or user is None or not user.email:
            return FormAnswer(error="Your address cannot be confirmed here.", status=400)
        if user.email_verified:
            return FormAnswer(message=f"{user.email} is confirmed already.")
        wait = await self._admit(stores, address=address, account="user:" + user.id, now=now)
        if wait:
            return self._throttled(wait)
        await stores.account_tokens.revoke_for_user(user.id, "verify_email", now)
        secret, token = self._new_link(
            VERIFY_EMAIL_PREFIX,
            email=user.email,
            user_id=user.id,
            ttl=accounts.email_verification_ttl,
            now=now,
        )
        await stores.account_tokens.create(token)
        notify(
            AccountNotice(
                "verify_email",
                user.email,
                f"{self.links.confirm}?token={secret}",
                username=user.username,
                valid_minutes=accounts.email_verification_ttl // 60,
            )
        )
        self.context.emit(AuditEvent(audit.EMAIL_VERIFICATION_SENT, now, user_id=user.id))
        return FormAnswer(message=VERIFICATION_SENT.format(email=user.email))

    # -- forgotten password -------------------------------------------------------------------

    async def request_reset(
        self, stores: Stores, login: str, *, address: str, notify: Notifier
    ) -> FormAnswer:
        """The forgotten-password form: a link to the account's address when the login (address
        or username) names an enabled account with an address; the same answer, after the same
        store work, when it does not."""
        accounts = self.context.policy.accounts
        now = self.context.now()
        if not accounts.reset_open:
            return FormAnswer(error="Password reset is not available here.", status=403)
        try:
            normalized = normalize_login(login)
        except ValueError:
            return FormAnswer(error="Enter your e-mail address or username.")
        wait = await self._admit(stores, address=address, account=normalized, now=now)
        if wait:
            return self._throttled(wait)
        user = await stores.users.find_by_login(normalized)
        if user is not None and (user.disabled or not user.email):
            user = None
        # the same UPDATE either way (matching no row for an unknown account)
        await stores.account_tokens.revoke_for_user(user.id if user else "-", "reset_password", now)
        if user is not None and user.email:
            secret, token = self._new_link(
                RESET_PASSWORD_PREFIX,
                email=user.email,
                user_id=user.id,
                ttl=accounts.password_reset_ttl,
                now=now,
            )
            await stores.account_tokens.create(token)
            notify(
                AccountNotice(
                    "reset_password",
                    user.email,
                    f"{self.links.reset}?token={secret}",
                    username=user.username,
                    valid_minutes=accounts.password_reset_ttl // 60,
                )
            )
        self.context.emit(
            AuditEvent(
                audit.PASSWORD_RESET_REQUESTED,
                now,
                user_id=user.id if user else None,
                address=address,
            )
        )
        return FormAnswer(message=RESET_SENT.format(minutes=accounts.password_reset_ttl // 60))

    async def begin_reset(self, stores: Stores, secret: str, *, address: str) -> ResetStart:
        """Step 1 of the reset form, in a first transaction: the address's throttle and the
        link (still valid, not used yet: it is used in step 3)."""
        now = self.context.now()
        failures = stores.login_failures
        by_address = await failures.reserve(
            "mail-ip:" + address,
            now,
            policy=throttle.MAIL_ADDRESS,
            ttl=throttle.FAILURE_MEMORY,
        )
        if not by_address.granted:
            locked = throttle.MAIL_ADDRESS.locked_until(by_address.record)
            return ResetStart(secret, None, self._throttled(max(1, locked - now)))
        if _purpose(secret) != "reset_password":
            return ResetStart(secret, None, FormAnswer(error=LINK_INVALID, status=400))
        token = await stores.account_tokens.get(
            digest(secret, self.context.pepper), "reset_password", now
        )
        user = await stores.users.get(token.user_id or "") if token else None
        # bound to the address it was sent to: not valid once the account's address changed
        if token is None or user is None or user.disabled or user.email != token.email:
            return ResetStart(secret, None, FormAnswer(error=LINK_INVALID, status=400))
        return ResetStart(secret, user)

    async def finish_reset(
        self, stores: Stores, start: ResetStart, password_hash: str, *, notify: Notifier
    ) -> FormAnswer:
        """Step 3, in a second transaction: use the link, set the password, and end everything
        the old password opened (sessions, grants, other reset links, the login back-off)."""
        now = self.context.now()
        token = await stores.account_tokens.consume(
            digest(start.secret, self.context.pepper), "reset_password", now
        )
        user = await stores.users.get(token.user_id or "") if token else None
        if token is None or user is None or user.disabled or user.email != token.email:
            return FormAnswer(error=LINK_INVALID, status=400)
        await stores.users.set_password_hash(user.id, password_hash, now)
        if not user.email_verified:  # the link reached this address
            await stores.users.set_profile(
                user.id, name=user.name, email=user.email, email_verified=True, now=now
            )
        await end_access(stores, user.id, now)
        await stores.account_tokens.revoke_for_user(user.id, "reset_password", now)
        await stores.login_failures.clear("user:" + user.id)
        self.context.emit(AuditEvent(audit.PASSWORD_RESET, now, user_id=user.id))
        notify(AccountNotice("password_changed", token.email, self.links.forgot, user.username))
        return FormAnswer(message="Your password is changed. Sign in with the new one.")


__all__ = [
    "LINK_INVALID",
    "AccountNotice",
    "FormAnswer",
    "LinkView",
    "Links",
    "Notifier",
    "ResetStart",
    "SelfService",
    "SignupStart",
    "WeakPassword",
    "discard_notice",
    "normalize_email",
    "username_for",
]
