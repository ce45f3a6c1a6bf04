"""Audit events: who did what, when (login success/failure, consent, tokens issued, refreshed and
revoked, reuse detected, logout).

The core emits them into an injected, non-blocking ``AuditSink``; the server's writer stores them
in the ``ts_audit_events`` table in the background, so no response waits on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_FAILED = "login.failed"
LOGIN_THROTTLED = "login.throttled"
LOGIN_BUSY = "login.busy"
"""A login refused because the password-hashing pool's queue was full (nothing was checked)."""
CONSENT_GRANTED = "consent.granted"
CONSENT_DENIED = "consent.denied"
CONSENT_WITHDRAWN = "consent.withdrawn"
TOKEN_ISSUED = "token.issued"
TOKEN_REFRESHED = "token.refreshed"
TOKEN_REVOKED = "token.revoked"
CODE_REPLAYED = "code.replayed"
REFRESH_REUSED = "refresh_token.reused"
LOGOUT = "logout"
SIGNUP_REQUESTED = "account.signup_requested"
ACCOUNT_CREATED = "account.created"
EMAIL_VERIFICATION_SENT = "email.verification_sent"
EMAIL_VERIFIED = "email.verified"
PASSWORD_RESET_REQUESTED = "password.reset_requested"
PASSWORD_RESET = "password.reset"
ACCOUNT_FORM_THROTTLED = "account.throttled"
EMAIL_CHANGE_REQUESTED = "email.change_requested"
EMAIL_CHANGED = "email.changed"
MFA_ENROLLED = "mfa.enrolled"
MFA_DISABLED = "mfa.disabled"
MFA_SUCCEEDED = "mfa.succeeded"
MFA_FAILED = "mfa.failed"
MFA_THROTTLED = "mfa.throttled"
MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used"
MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
CLIENT_REGISTERED = "client.registered"
CLIENT_REGISTRATION_REFUSED = "client.registration_refused"
CLIENT_REGISTRATION_UPDATED = "client.registration_updated"
CLIENT_REGISTRATION_DELETED = "client.registration_deleted"
PASSKEY_REGISTERED = "passkey.registered"
PASSKEY_REMOVED = "passkey.removed"
PASSKEY_USED = "passkey.used"
PASSKEY_FAILED = "passkey.failed"
PASSKEY_COUNTER_REGRESSION = "passkey.counter_regression"
ACCOUNT_DELETED = "account.deleted"

PERSONAL_DETAIL = frozenset({"name", "email", "login", "username", "user_agent"})
"""Detail keys that may hold personal data (a passkey's name the user chose, ...): removed, with
the client address, from the events of a deleted user, which are kept without them."""

FORGETTING = frozenset({ACCOUNT_DELETED})
"""Events after which the writer removes the subject's personal data from every event stored
so far, the ones this process queued before it included."""


def without_personal_data(detail: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in detail.items() if k not in PERSONAL_DETAIL}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event: str
    at: int
    client_id: str | None = None
    user_id: str | None = None
    address: str | None = None
    detail: dict[str, str] = field(default_factory=dict)


AuditSink = Callable[[AuditEvent], None]


def discard(event: AuditEvent) -> None:
    """The sink used when nothing records audit events."""
