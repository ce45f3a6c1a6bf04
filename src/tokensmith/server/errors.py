"""The one place that renders protocol errors (``core.errors``): JSON for API endpoints
(:func:`json_error`), and for the browser endpoints (:func:`browser_error`) a redirect to the
client once its redirect URI is trusted (the error's ``return_to``, with ``state`` and ``iss``,
RFC 6749 §4.1.2.1, RFC 9207) or else an error page. Details are logged, never sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core.authorize import error_redirect_url
from tokensmith.core.errors import (
    CsrfRejected,
    HashingBusy,
    InteractionExpired,
    NotSignedIn,
    OAuthError,
    PageNotOffered,
    TemporarilyUnavailable,
)
from tokensmith.server.http import RequestTimeout, error_response
from tokensmith.server.pages import Pages

log = logging.getLogger("tokensmith.server")

PAGE_ADVICE = (
    "Go back to the application you came from and start signing in again. If this keeps "
    "happening, tell the application's developers: its sign-in link is not set up correctly."
)


@dataclass(frozen=True, slots=True)
class PageText:
    """The words of an error page; ``message`` replaces the error's description and ``code``
    its error code when set."""

    title: str
    advice: str
    message: str | None = None
    code: str | None = None


DEFAULT_PAGE = PageText("This sign-in request cannot continue", PAGE_ADVICE)
PAGES: tuple[tuple[type[OAuthError], PageText], ...] = (
    (
        RequestTimeout,
        PageText(
            "The form took too long to arrive",
            "Check your connection, go back and send the form again.",
            code="request_timeout",
        ),
    ),
    (
        InteractionExpired,
        PageText(
            "This sign-in page has expired",
            "For your safety, sign-in pages work for a few minutes and in one browser only.",
        ),
    ),
    (
        CsrfRejected,
        PageText(
            "The form could not be accepted",
            "Reload the sign-in page and try again. Cookies must be enabled for this site.",
        ),
    ),
    (
        PageNotOffered,
        PageText("This page is not offered here", "Go back to the page you came from."),
    ),
    (
        NotSignedIn,
        PageText(
            "You are not signed in",
            "Sign in through one of your applications, then come back to this page.",
        ),
    ),
    (
        HashingBusy,
        PageText(
            "Too many people are signing in right now",
            "Wait a few seconds, go back and send the form again.",
            message="The sign-in service is busy checking passwords.",
        ),
    ),
    (
        TemporarilyUnavailable,
        PageText(
            "Sign-in is briefly unavailable",
            "Wait a few seconds and reload the page.",
            message="The sign-in service cannot reach its storage right now.",
        ),
    ),
)


def page_text(exc: OAuthError) -> PageText:
    return next((text for kind, text in PAGES if isinstance(exc, kind)), DEFAULT_PAGE)


def log_error(request: Request, exc: OAuthError) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(exc.error).inc()
    if exc.detail or exc.status_code >= 500:
        log.info("%s %s -> %s: %s", request.method, request.url.path, exc.error, exc.detail or "")


def json_error(request: Request, exc: OAuthError) -> Response:
    """An API endpoint's error: RFC 6749 §5.2 JSON with the error's status and headers."""
    log_error(request, exc)
    return error_response(exc)


def page_error(
    request: Request, pages: Pages, exc: OAuthError, *, advice: str | None = None
) -> Response:
    """A browser endpoint's error page (``advice`` replaces the page's usual advice)."""
    log_error(request, exc)
    text = page_text(exc)
    status = exc.status_code if 400 <= exc.status_code < 600 else 400
    response = pages.error(
        title=text.title,
        message=text.message or exc.description or exc.error,
        advice=advice or text.advice,
        status=status,
        code=text.code or exc.error,
    )
    # RequestTimeout: the connection closes, the body was not read whole; HashingBusy: when
    # to try again
    if isinstance(exc, (RequestTimeout, HashingBusy)):
        response.headers.update(exc.headers)
    return response


def browser_error(
    request: Request, pages: Pages, exc: OAuthError, *, issuer: str, status: int
) -> Response:
    """A browser endpoint's error: to the client's redirect URI (``status``: 302 after a
    ``GET``, 303 after a form) when the error is redirectable, else a page."""
    if not exc.redirectable:
        return page_error(request, pages, exc)
    log_error(request, exc)
    return RedirectResponse(error_redirect_url(exc, issuer), status_code=status)
