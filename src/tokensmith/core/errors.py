"""One error tree for the whole protocol.

Each error carries the RFC error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7009; RFC 8707;
OpenID Connect Core §3.1.2.6), its HTTP status, a description that is safe to show to the client,
and an internal ``detail`` that is logged and never sent. ``server/errors.py`` is the one place that
turns them into responses.

Where an error goes is an attribute of the error, not a wrapper around it: API endpoints answer
every error as JSON; the browser endpoints send it to the client's redirect URI once that URI is
trusted (``return_to`` set by :meth:`OAuthError.to_client`, RFC 6749 §4.1.2.1) and show an error
page otherwise (``redirectable`` is ``False``, RFC 9700 §4.11.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class ReturnTo:
    """The client's validated redirect URI and the request's ``state``: where a redirectable
    error is sent (with ``iss``, RFC 9207)."""

    redirect_uri: str
    state: str | None


class OAuthError(Exception):
    """A protocol error. ``description`` is public; ``detail`` is for logs only."""

    error: str = "server_error"
    status_code: int = 400
    page_only: bool = False
    """Errors about the client or redirect URI themselves: never sent to a redirect URI."""

    def __init__(
        self,
        description: str = "",
        *,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.return_to: ReturnTo | None = None

    def to_client(self, redirect_uri: str, state: str | None) -> Self:
        """This error, to be sent to the client's (validated) ``redirect_uri`` with ``state``."""
        if not self.page_only:
            self.return_to = ReturnTo(redirect_uri, state)
        return self

    @property
    def redirectable(self) -> bool:
        """Whether the browser is sent back to the client with this error (else: a page)."""
        return self.return_to is not None

    def body(self) -> dict[str, str]:
        """The JSON body of RFC 6749 §5.2."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is unknown or not allowed."""

    error = "invalid_target"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status_code = 403


class LoginRequired(OAuthError):
    error = "login_required"


class NotSignedIn(LoginRequired):
    """A page of the signed-in user (the account page) opened without a session: 401."""

    status_code = 401


class ConsentRequired(OAuthError):
    error = "consent_required"


class UnmetAuthenticationRequirements(OAuthError):
    """The request needs a second factor (a required ``acr`` or the server's "MFA required"
    policy) and the user has none (OpenID Connect Core Unmet Authentication Requirements 1.0)."""

    error = "unmet_authentication_requirements"


class RequestNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6: request objects are not supported."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2; used by registration (admin API and CLI)."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class HashingBusy(TemporarilyUnavailable):
    """More password operations are waiting for the hashing pool than its queue allows
    (``password_hash_queue``): refused at once, 503 with ``Retry-After``, nothing written."""

    RETRY_AFTER = 5

    def __init__(self, pending: int) -> None:
        super().__init__(
            "too many sign-ins at once; try again in a few seconds",
            detail=f"{pending} password operations already running or waiting",
            headers={"Retry-After": str(self.RETRY_AFTER)},
        )


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class SlowDown(OAuthError):
    """Too many requests: 429 with ``Retry-After``."""

    error = "slow_down"
    status_code = 429


class AuthorizationPageError(OAuthError):
    """An authorization request whose client or redirect URI cannot be trusted.

    RFC 6749 §4.1.2.1 and RFC 9700 §4.11.2: it is shown to the user on an error page and is never
    sent to any redirect URI.
    """

    error = "invalid_request"
    page_only = True


class InteractionExpired(OAuthError):
    """A login or consent transaction that does not exist (any more), has expired, or belongs to
    another browser: a page, never a redirect."""

    error = "interaction_expired"
    page_only = True


class CsrfRejected(OAuthError):
    """A page's form without this browser's CSRF token, or posted from another origin: 403, a
    page (``error`` is the page's code ``csrf``)."""

    error = "csrf"
    status_code = 403
    page_only = True


class PageNotOffered(OAuthError):
    """A self-service page the operator did not switch on (sign-up, password reset, the
    development outbox): 404, a page."""

    error = "not_found"
    status_code = 404
    page_only = True


class SignOutRejected(InvalidRequest):
    """The sign-out form failed its CSRF check: 403 ``invalid_request`` on the error page."""

    status_code = 403
    page_only = True
