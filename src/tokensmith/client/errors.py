"""Errors of the client toolkit: each says, in words a person understands, what went wrong.

Every error carries an HTTP status, a public title and message (shown on the error page) and an
internal ``detail`` (logged, never sent). The router renders all of them as an HTML page; none
becomes a 500 or shows a stack trace.

A ``detail`` often quotes what a provider or a browser sent (``error_description``, a claim): its
control and other non-printable characters are escaped when the error is made, so a value with
``%0A`` in it cannot forge a line of the log (log injection, CWE-117).
"""

from __future__ import annotations

__all__ = [
    "CSRFError",
    "EmailNotVerified",
    "InvalidIdToken",
    "InvalidState",
    "IssuerMismatch",
    "LoginCancelled",
    "LoginError",
    "ProviderError",
    "ProviderUnavailable",
    "ReloginRequired",
    "TemporaryFailure",
    "TransactionReplayed",
    "UnknownProvider",
]


class LoginError(Exception):
    """Base class: a login (or logout, or upstream call) that cannot go on."""

    status_code: int = 400
    title: str = "Sign-in failed"
    message: str = "Something went wrong while signing you in. Please try again."

    def __init__(self, detail: str = "", *, message: str | None = None) -> None:
        detail = _printable(detail)
        super().__init__(detail or self.message)
        self.detail = detail
        if message is not None:
            self.message = message


def _printable(text: str) -> str:
    """``text`` with every non-printable character (CR, LF, other controls, U+2028...) escaped
    as Python would in a string literal, e.g. a line feed becomes the two characters ``\\n``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class UnknownProvider(LoginError):
    status_code = 404
    title = "Unknown sign-in provider"
    message = "This sign-in provider is not configured."


class LoginCancelled(LoginError):
    """The provider answered ``error=access_denied``: the person pressed Cancel."""

    status_code = 400
    title = "Sign-in cancelled"
    message = "You cancelled the sign-in. Nothing was changed; you can try again at any time."


class ProviderError(LoginError):
    """The provider answered with an error (authorization or token endpoint); ``error`` is the
    OAuth error code it sent (RFC 6749 §5.2), when there was one."""

    status_code = 400
    title = "The provider refused the sign-in"
    message = "The sign-in provider could not complete the sign-in. Please start again."

    def __init__(
        self, detail: str = "", *, message: str | None = None, error: str | None = None
    ) -> None:
        super().__init__(detail, message=message)
        self.error = error


class ProviderUnavailable(LoginError):
    """The provider could not be reached, timed out, or answered nonsense."""

    status_code = 502
    title = "The sign-in provider is unavailable"
    message = "We could not reach the sign-in provider. Please try again in a few minutes."


class InvalidState(LoginError):
    """Missing, expired, wrong or foreign ``state`` / transaction cookie."""

    status_code = 400
    title = "Sign-in link expired"
    message = (
        "This sign-in attempt has expired or was started in another browser. "
        "Please start the sign-in again from this page."
    )


class TransactionReplayed(InvalidState):
    title = "Sign-in already completed"
    message = "This sign-in link was already used. Please start the sign-in again."


class IssuerMismatch(LoginError):
    """RFC 9207: the ``iss`` of the authorization response is not the provider we started with."""

    status_code = 400
    title = "Sign-in response from the wrong provider"
    message = "The sign-in response did not come from the provider you chose. Please start again."


class InvalidIdToken(LoginError):
    status_code = 400
    title = "Sign-in could not be verified"
    message = "The identity sent by the sign-in provider could not be verified. Please try again."


class EmailNotVerified(LoginError):
    status_code = 403
    title = "E-mail address not verified"
    message = (
        "This application needs a verified e-mail address, and the sign-in provider did not "
        "confirm yours (or did not share it). Verify your address with the provider, or ask "
        "its administrator to mark it verified, then sign in again."
    )


class CSRFError(LoginError):
    status_code = 403
    title = "Request refused"
    message = "This request could not be verified. Reload the page and try again."


class ReloginRequired(LoginError):
    """The provider no longer accepts the stored tokens (even after one refresh)."""

    status_code = 401
    title = "Please sign in again"
    message = "Your connection to the provider has expired. Please sign in again."


class TemporaryFailure(LoginError):
    """Something on our side failed (database, app hook); logged with its traceback."""

    status_code = 503
    title = "Sign-in is temporarily unavailable"
    message = "Sign-in is temporarily unavailable. Please try again in a few minutes."
