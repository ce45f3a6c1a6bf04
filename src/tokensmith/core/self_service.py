"""Self-service accounts by e-mail: sign-up, e-mail verification and the forgotten password
(OWASP ASVS 6.4 and the Forgot Password Cheat Sheet; NIST SP 800-63B-4 §3.1.1.2 for the password
chosen). Each is switched on by the operator (``core.policy.AccountPolicy``).

The links. Each link carries a 256-bit random secret behind a prefix naming its purpose
(``ts_su_`` sign-up, ``ts_ev_`` e-mail verification, ``ts_pr_`` password reset, ``ts_iv_``
invitation); only its HMAC
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
counters (``core.throttle.MAIL_ADDRESS``, ``MAIL_ACCOUNT``) before anything else. The
confirmation link is charged to its address too, and the forgotten-password form, once it knows
the account, to the mailbox the link would go to, silently (``_mailbox_admits``): naming an
account by its username and its address in turn does not double what its mailbox receives.

E-mail change (a signed-in user, on the account page). The form takes the new address (checked
as at sign-up) and the current password (checked as for a password change,
``core.account_security``). Nothing changes then: a link (``ts_ce_``, ``email_change_ttl``) goes
to the new address, bound to the user and to the address they have now, and the old address is
told (no link that changes anything). For a new address that has an account already, the new
address gets a message saying so instead of a link; the page answers the same. The link works
only in a browser signed in as its user (a person who owns a mistyped address cannot take the
account), makes the new address the user's, verified, and ends the user's other pending links;
the old address is told again. If the address became another account's meanwhile, the users
table's unique constraint refuses it and nothing is kept (``AddressTaken``). A password change
or reset cancels a pending change.

Invitations. An operator invites an address (``new_invitation``, made by the admin service for
``tokensmith users invite`` and ``POST /admin/v1/invitations``); the link leads to the sign-up
form with that address fixed. Accepting it (``begin_invitation``, then ``accept_invitation``)
uses the invitation atomically and creates the account with its address verified: the operator
named the address and the link was sent there. Invitations are accepted whenever sign-up is not
``off`` (``AccountPolicy.invitations_open``), whatever ``signup_domains`` says: the operator
chose the address. A new invitation to an address withdraws the previous one.

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
from dataclasses import dataclass, field, replace

from tokensmith.core import audit, throttle
from tokensmith.core.accounts import UPDATE_EMAIL, end_access
from tokensmith.core.audit import AuditEvent
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import NotSignedIn
from tokensmith.core.interaction import KEEP, SessionChange
from tokensmith.core.models import AccountToken, Session, User
from tokensmith.core.password_rules import PasswordRules, WeakPassword
from tokensmith.core.passwords import (
    Passwords,
    check_single_script,
    normalize_email,
    normalize_login,
)
from tokensmith.core.ports import Conflict, Stores
from tokensmith.core.secrets import digest, new_secret

SIGNUP_PREFIX = "ts_su_"
VERIFY_EMAIL_PREFIX = "ts_ev_"
RESET_PASSWORD_PREFIX = "ts_pr_"
CHANGE_EMAIL_PREFIX = "ts_ce_"
INVITATION_PREFIX = "ts_iv_"
PURPOSES = {
    SIGNUP_PREFIX: "signup",
    VERIFY_EMAIL_PREFIX: "verify_email",
    RESET_PASSWORD_PREFIX: "reset_password",
    CHANGE_EMAIL_PREFIX: "change_email",
    INVITATION_PREFIX: "invitation",
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
INVITATION_INVALID = (
    "This invitation is not valid any more: it was used already, it expired or was withdrawn, "
    "or its link was copied incompletely. Ask the person who invited you for a new one."
)
INVITATION_ONLY = (
    "Accounts here are created by invitation only. Ask an administrator to invite you; the "
    "invitation's link brings you back here."
)
EMAIL_CHANGE_SENT = (
    "We sent a link to {email}. Open it in this browser, signed in, within {minutes} minutes "
    "to make it your address. Until then your address stays as it is."
)
EMAIL_CHANGE_CLOSED = "Your address cannot be changed here."
SAME_EMAIL = "This is your address already."
SIGN_IN_TO_CHANGE = (
    "Open this link in the browser where you are signed in to the account that asked for the "
    "change (sign in there first, then open the link again)."
)
ADDRESS_TAKEN = (
    "This address now belongs to another account, so your address was not changed. Ask for "
    "the change again with another address."
)


class AddressTaken(Conflict):
    """The new address of an e-mail change became another account's before the link was used
    (the users table's unique constraint refused it): nothing of the change may be kept, so the
    caller rolls the transaction back (the link stays unused) and shows ``ADDRESS_TAKEN``."""


def mailbox_key(email: str | None) -> str:
    """The throttling key of a mailbox (``mail:`` + this): the address as sign-up normalises
    what is typed; empty for none."""
    if not email:
        return ""
    try:
        return normalize_login(email)
    except ValueError:
        return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class AccountNotice:
    """A message for a person, which the server's mailer renders and sends in the background.

    ``kind``: ``signup`` (the link that creates the account), ``signup_existing`` (someone tried
    to sign up with an address that has an account), ``invitation`` (an operator's invitation),
    ``verify_email``, ``reset_password``, ``password_changed``; for an e-mail change:
    ``change_email`` (the link, to the new address), ``change_email_existing`` (to a new address
    that has an account already), ``email_change_requested`` and ``email_changed`` (notices to
    the old address, naming the new one in ``new_email``)."""

    kind: str
    to: str
    link: str | None = field(default=None, repr=False)
    username: str | None = None
    valid_minutes: int = 0
    new_email: str | None = None


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
    session: SessionChange = KEEP
    """How the session cookie changes (a new id after a password change)."""


@dataclass(frozen=True, slots=True)
class SignupStart:
    """A sign-up admitted by the throttles and the operator's rules; its password is next."""

    email: str
    name: str | None
    answer: FormAnswer | None = None
    """Set when the sign-up stops here (refused, throttled)."""
    invitation: str = field(default="", repr=False)
    """The invitation's secret, for an invited sign-up (used in step 3)."""


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """An invitation an operator made: its record (the digest of its secret), its link (shown
    once) and the message that carries the link."""

    token: AccountToken
    link: str = field(repr=False)
    notice: AccountNotice


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
    error: str | None = None
    """A valid link this browser cannot use (an e-mail change seen without its user's session)."""
    name: str = ""
    """The name an invitation proposes (empty otherwise)."""


def _purpose(secret: str) -> str | None:
    for prefix, purpose in PURPOSES.items():
        if secret.startswith(prefix) and len(secret) < 100:
            return purpose
    return None


def new_link(
    prefix: str, *, pepper: bytes, email: str, user_id: str | None, ttl: int, now: int, **data: str
) -> tuple[str, AccountToken]:
    """A link's secret (behind ``prefix``) and its record, which holds only the secret's
    digest."""
    secret = new_secret(prefix)
    token = AccountToken(
        digest=digest(secret, pepper),
        purpose=PURPOSES[prefix],
        email=email,
        user_id=user_id,
        created_at=now,
        expires_at=now + ttl,
        data=data,
    )
    return secret, token


def new_invitation(
    email: str, *, name: str | None, pepper: bytes, now: int, ttl: int, signup_url: str
) -> NewInvitation:
    """An invitation for ``email`` (normalised here: ``ValueError`` when it is not an address)
    that stays valid ``ttl`` seconds, and its message, whose link leads to ``signup_url``."""
    address = normalize_email(email)
    clean_name = " ".join((name or "").split())[:200]
    data = {"name": clean_name} if clean_name else {}
    secret, token = new_link(
        INVITATION_PREFIX, pepper=pepper, email=address, user_id=None, ttl=ttl, now=now, **data
    )
    link = f"{signup_url}?invite={secret}"
    notice = AccountNotice("invitation", address, link, valid_minutes=ttl // 60)
    return NewInvitation(token, link, notice)


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

    async def _admit_address(self, stores: Stores, *, address: str, now: int) -> int:
        """Reserve one attempt for the client address alone (the link forms): 0, or seconds
        to wait."""
        by_address = await stores.login_failures.reserve(
            "mail-ip:" + address, now, policy=throttle.MAIL_ADDRESS, ttl=throttle.FAILURE_MEMORY
        )
        if by_address.granted:
            return 0
        return max(1, throttle.MAIL_ADDRESS.locked_until(by_address.record) - now)

    async def _admit(
        self, stores: Stores, *, address: str, account: str, now: int, mailbox: str = ""
    ) -> int:
        """Reserve one attempt for the address, then for the account (and for the ``mailbox``
        written to, when it is not the account's: the key sign-up and reset use for that
        address, so every form shares one budget per mailbox): 0, or seconds to wait."""
        failures = stores.login_failures
        ttl = throttle.FAILURE_MEMORY
        by_address = await failures.reserve(
            "mail-ip:" + address, now, policy=throttle.MAIL_ADDRESS, ttl=ttl
        )
        if not by_address.granted:
            locked = throttle.MAIL_ADDRESS.locked_until(by_address.record)
        else:
            locked = 0
            for key in (account, mailbox) if mailbox else (account,):
                by_account = await failures.reserve(
                    "mail:" + key, now, policy=throttle.MAIL_ACCOUNT, ttl=ttl
                )
                if not by_account.granted:
                    locked = throttle.MAIL_ACCOUNT.locked_until(by_account.record)
                    break
            else:
                return 0
        self.context.emit(AuditEvent(audit.ACCOUNT_FORM_THROTTLED, now, address=address))
        return max(1, locked - now)

    async def _mailbox_admits(
        self, stores: Stores, user: User | None, typed: str, *, address: str, now: int
    ) -> bool:
        """The forgotten-password form, once the account is known: reserve one attempt on the
        budget of the mailbox the link would go to (``mailbox:`` and its address), so that
        typing the username and the address in turn does not double what one mailbox
        receives. That budget is silent: past it the answer is the same and no message goes
        (``False``), so a refusal tells nobody which username has which address (the budgets
        of what was typed answer 429, for known and unknown accounts alike). A login that names
        no account reserves the key of what was typed, never consulted: every request does the
        same store work."""
        mailbox = mailbox_key(user.email) if user is not None else ""
        reservation = await stores.login_failures.reserve(
            "mailbox:" + (mailbox or typed),
            now,
            policy=throttle.MAIL_ACCOUNT,
            ttl=throttle.FAILURE_MEMORY,
        )
        if not mailbox or reservation.granted:
            return True
        self.context.emit(AuditEvent(audit.ACCOUNT_FORM_THROTTLED, now, address=address))
        return False

    def _throttled(self, retry_after: int) -> FormAnswer:
        return FormAnswer(error=TOO_MANY, retry_after=retry_after, status=429)

    def _new_link(
        self, prefix: str, *, email: str, user_id: str | None, ttl: int, now: int, **data: str
    ) -> tuple[str, AccountToken]:
        return new_link(
            prefix,
            pepper=self.context.pepper,
            email=email,
            user_id=user_id,
            ttl=ttl,
            now=now,
            **data,
        )

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
            closed = INVITATION_ONLY if accounts.invitations_open else "Sign-up is closed."
            return SignupStart("", None, FormAnswer(error=closed, status=403))
        try:
            normalized = normalize_email(email)
        except ValueError:
            return SignupStart("", None, FormAnswer(error="Enter a valid e-mail address."))
        clean_name = " ".join(name.split())[:200] or None
        wait = await self._admit(stores, address=address, account=normalized, now=now)
        if wait:
            return SignupStart(normalized, clean_name, self._throttled(wait))
        allowed = self._outside_domains(normalized)
        if allowed:
            return SignupStart(
                normalized,
                clean_name,
                FormAnswer(error=f"Sign-up is open to addresses at {allowed} only.", status=403),
            )
        return SignupStart(normalized, clean_name)

    def _outside_domains(self, email: str) -> str:
        """The operator's domains, when sign-up is limited to them and ``email`` is at none of
        them; "" when the address is acceptable."""
        accounts = self.context.policy.accounts
        domain = email.rsplit("@", 1)[1]
        if accounts.signup == "domains" and domain not in accounts.signup_domains:
            return ", ".join(sorted(accounts.signup_domains))
        return ""

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

    # -- invitations --------------------------------------------------------------------------

    async def view_invitation(self, stores: Stores, secret: str) -> LinkView:
        """Whether an invitation's link is valid, and for which address (nothing is used)."""
        if _purpose(secret) != "invitation" or not self.context.policy.accounts.invitations_open:
            return LinkView(None)
        token = await stores.account_tokens.get(
            digest(secret, self.context.pepper), "invitation", self.context.now()
        )
        if token is None:
            return LinkView(None)
        return LinkView("invitation", token.email, name=token.data.get("name", ""))

    async def begin_invitation(
        self, stores: Stores, secret: str, *, name: str, address: str
    ) -> SignupStart:
        """Step 1 of an invited sign-up, in a first transaction: the invitation, still valid
        (used in step 3), and the client address's throttle (before the password is hashed).
        The address is the invitation's, whatever the form says."""
        now = self.context.now()
        view = await self.view_invitation(stores, secret)
        if view.purpose is None:
            return SignupStart("", None, FormAnswer(error=INVITATION_INVALID, status=400))
        clean_name = " ".join(name.split())[:200] or None
        wait = await self._admit_address(stores, address=address, now=now)
        if wait:
            self.context.emit(AuditEvent(audit.ACCOUNT_FORM_THROTTLED, now, address=address))
            return SignupStart(view.email, clean_name, self._throttled(wait), invitation=secret)
        return SignupStart(view.email, clean_name, invitation=secret)

    async def accept_invitation(
        self, stores: Stores, start: SignupStart, password_hash: str
    ) -> FormAnswer:
        """Step 3, in a second transaction: use the invitation (of two concurrent uses, one
        wins; the other gets ``INVITATION_INVALID``) and create the account, its address
        verified."""
        now = self.context.now()
        token = await stores.account_tokens.consume(
            digest(start.invitation, self.context.pepper), "invitation", now
        )
        if token is None:
            return FormAnswer(error=INVITATION_INVALID, status=400)
        data = {"password_hash": password_hash}
        if start.name:
            data["name"] = start.name
        return await self._create_account(
            stores, replace(token, data=data), now, detail={"invitation": "yes"}
        )

    # -- the page of a link -------------------------------------------------------------------

    async def view_link(
        self, stores: Stores, secret: str, *, session: Session | None = None
    ) -> LinkView:
        """Whether a link from a message is valid (nothing is used: the page's button uses it).
        ``session``: the browser's (an e-mail change is confirmed only in its user's)."""
        purpose = _purpose(secret)
        if purpose is None:
            return LinkView(None)
        token = await stores.account_tokens.get(
            digest(secret, self.context.pepper), purpose, self.context.now()
        )
        if token is None:
            return LinkView(None)
        if purpose == "change_email":
            user = await self._changing(stores, token)
            if user is None:
                return LinkView(None)
            if session is None or session.user_id != user.id:
                return LinkView(purpose, token.email, error=SIGN_IN_TO_CHANGE)
            return LinkView(purpose, token.email)
        if token.user_id is not None:  # a link for an account: still its address, still enabled
            user = await stores.users.get(token.user_id)
            if user is None or user.disabled or user.email != token.email:
                return LinkView(None)
        return LinkView(purpose, token.email)

    async def confirm(
        self,
        stores: Stores,
        secret: str,
        *,
        session: Session | None = None,
        notify: Notifier = discard_notice,
    ) -> FormAnswer:
        """The button of a sign-up, verification or e-mail change link: create the account (its
        address verified), mark the user's address verified, or make the new address the
        user's (``change_email``; ``session``: the browser's, which must be the user's). The
        link is used either way.

        ``AddressTaken``: the new address of a change became another account's; the caller
        rolls the transaction back."""
        purpose = _purpose(secret)
        now = self.context.now()
        if purpose == "change_email":
            return await self._change_email(stores, secret, session, notify, now)
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

    async def _create_account(
        self,
        stores: Stores,
        token: AccountToken,
        now: int,
        *,
        detail: dict[str, str] | None = None,
    ) -> FormAnswer:
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
            self.context.emit(
                AuditEvent(audit.ACCOUNT_CREATED, now, user_id=user.id, detail=detail or {})
            )
            self.context.emit(AuditEvent(audit.EMAIL_VERIFIED, now, user_id=user.id))
            return FormAnswer(
                message=f"Your account is ready. Sign in with {token.email} and your password."
            )
        raise Conflict("no free username")  # pragma: no cover - five 24-bit collisions

    # -- e-mail change (signed-in user, with the password) -------------------------------------

    def new_email(self, value: str) -> tuple[str, FormAnswer | None]:
        """The address typed in the account page's e-mail change form, normalised and checked as
        sign-up checks it (and against the operator's domains when sign-up is limited to them),
        before anything else: the address, or a refusal."""
        if (
            not self.context.policy.accounts.email_change_open
            or UPDATE_EMAIL not in self.context.accounts.capabilities
        ):
            return "", FormAnswer(error=EMAIL_CHANGE_CLOSED, status=403)
        try:
            email = normalize_email(value)
        except ValueError:
            return "", FormAnswer(error="Enter a valid e-mail address.", status=400)
        allowed = self._outside_domains(email)
        if allowed:
            return "", FormAnswer(error=f"Only addresses at {allowed} are accepted.", status=403)
        return email, None

    async def request_email_change(
        self, stores: Stores, user: User, email: str, *, address: str, notify: Notifier
    ) -> FormAnswer:
        """The e-mail change form, once the user's password was checked
        (``account_security.AccountSecurity.finish_email_change``): a link to the new address
        (``new_email``'s), bound to the user and to their current address; or, when the new
        address has an account already, a message saying so there instead. The same answer
        either way. The old address is told (no link that changes anything)."""
        ttl = self.context.policy.accounts.email_change_ttl
        now = self.context.now()
        if (user.email or "") == email:
            return FormAnswer(error=SAME_EMAIL, status=400)
        wait = await self._admit(
            stores, address=address, account="user:" + user.id, now=now, mailbox=email
        )
        if wait:
            return self._throttled(wait)
        owner = await self.context.accounts.find_by_login(stores, email)
        # a new request makes the previous link useless (the same UPDATE either way)
        await stores.account_tokens.revoke_for_user(user.id, "change_email", now)
        if owner is not None:
            notify(AccountNotice("change_email_existing", email, self.links.forgot))
        else:
            secret, token = self._new_link(
                CHANGE_EMAIL_PREFIX,
                email=email,
                user_id=user.id,
                ttl=ttl,
                now=now,
                old_email=user.email or "",
            )
            await stores.account_tokens.create(token)
            notify(
                AccountNotice(
                    "change_email",
                    email,
                    f"{self.links.confirm}?token={secret}",
                    username=user.username,
                    valid_minutes=ttl // 60,
                )
            )
        if user.email:
            notify(
                AccountNotice(
                    "email_change_requested",
                    user.email,
                    self.links.forgot,
                    user.username,
                    new_email=email,
                )
            )
        self.context.emit(
            AuditEvent(
                audit.EMAIL_CHANGE_REQUESTED,
                now,
                user_id=user.id,
                address=address,
                detail={"existing": "yes" if owner else "no"},
            )
        )
        return FormAnswer(message=EMAIL_CHANGE_SENT.format(email=email, minutes=ttl // 60))

    async def _changing(self, stores: Stores, token: AccountToken) -> User | None:
        """The user of an e-mail change link, while it still applies: enabled, and with the
        address they had when they asked (a change made since, by another link or an
        administrator, makes it useless)."""
        user = await self.context.accounts.get(stores, token.user_id or "")
        if user is None or user.disabled or (user.email or "") != token.data.get("old_email"):
            return None
        return user

    async def _change_email(
        self, stores: Stores, secret: str, session: Session | None, notify: Notifier, now: int
    ) -> FormAnswer:
        accounts = self.context.accounts
        if (
            not self.context.policy.accounts.email_change_open
            or UPDATE_EMAIL not in accounts.capabilities
        ):
            return FormAnswer(error=EMAIL_CHANGE_CLOSED, status=403)
        key = digest(secret, self.context.pepper)
        pending = await stores.account_tokens.get(key, "change_email", now)
        user = await self._changing(stores, pending) if pending else None
        if user is None:
            return FormAnswer(error=LINK_INVALID, status=400)
        if session is None or session.user_id != user.id:  # not used: the right browser may
            return FormAnswer(error=SIGN_IN_TO_CHANGE, status=403)
        token = await stores.account_tokens.consume(key, "change_email", now)
        if token is None:  # used meanwhile
            return FormAnswer(error=LINK_INVALID, status=400)
        try:
            changed = await accounts.set_profile(
                stores, user.id, name=user.name, email=token.email, email_verified=True, now=now
            )
        except Conflict:
            raise AddressTaken(ADDRESS_TAKEN) from None
        if not changed:
            return FormAnswer(error=LINK_INVALID, status=400)
        # links sent for the old address, and other pending changes, are useless now
        for purpose in ("change_email", "verify_email"):
            await stores.account_tokens.revoke_for_user(user.id, purpose, now)
        self.context.emit(AuditEvent(audit.EMAIL_CHANGED, now, user_id=user.id))
        if user.email:
            notify(
                AccountNotice(
                    "email_changed", user.email, None, user.username, new_email=token.email
                )
            )
        return FormAnswer(message=f"Your address is now {token.email}.")

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
        wait = await self._admit(
            stores,
            address=address,
            account="user:" + user.id,
            now=now,
            mailbox=mailbox_key(user.email),
        )
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
        if not await self._mailbox_admits(stores, user, normalized, address=address, now=now):
            user = None  # the same answer, and no message: that mailbox has had its share
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
        wait = await self._admit_address(stores, address=address, now=now)
        if wait:
            return ResetStart(secret, None, self._throttled(wait))
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
        the old password opened (sessions, grants and consents: each application must be allowed
        again, other reset links, the login back-off)."""
        now = self.context.now()
        token = await stores.account_tokens.consume(
            digest(start.secret, self.context.pepper), "reset_password", now
        )
        user = await stores.users.get(token.user_id or "") if token else None
        if token is None or user is None or user.disabled or user.email != token.email:
            return FormAnswer(error=LINK_INVALID, status=400)
        # the login back-off cleared first: a login concluding meanwhile clears the same
        # counter before it writes the user and holds the stamp, so both lock in that order
        await stores.login_failures.clear("user:" + user.id)
        await stores.users.set_password_hash(user.id, password_hash, now)
        if not user.email_verified:  # the link reached this address
            await stores.users.set_profile(
                user.id, name=user.name, email=user.email, email_verified=True, now=now
            )
        for client_id in await stores.consents.list_for_user(user.id):
            await stores.consents.withdraw(user.id, client_id)
        await end_access(stores, user.id, now)  # after the consents, as accounts.forget
        for purpose in ("reset_password", "change_email"):  # a pending change is cancelled
            await stores.account_tokens.revoke_for_user(user.id, purpose, now)
        self.context.emit(AuditEvent(audit.PASSWORD_RESET, now, user_id=user.id))
        notify(AccountNotice("password_changed", token.email, self.links.forgot, user.username))
        return FormAnswer(message="Your password is changed. Sign in with the new one.")


__all__ = [
    "ADDRESS_TAKEN",
    "INVITATION_INVALID",
    "INVITATION_ONLY",
    "LINK_INVALID",
    "AccountNotice",
    "AddressTaken",
    "FormAnswer",
    "LinkView",
    "Links",
    "NewInvitation",
    "Notifier",
    "ResetStart",
    "SelfService",
    "SignupStart",
    "WeakPassword",
    "discard_notice",
    "new_invitation",
    "new_link",
    "normalize_email",
    "username_for",
]
