"""The one place that renders protocol errors: JSON for API endpoints, a page for the browser,
a redirect to the client once its redirect URI is trusted. Details are logged, never sent."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core.authorize import RedirectError, error_redirect_url
from tokensmith.core.errors import OAuthError
from tokensmith.server.http import RequestTimeout, error_response
from tokensmith.server.pages import Pages

log = logging.getLogger("tokensmith.server")

PAGE_ADVICE = (
    "Go back to the application you came from and start signing in again. If this keeps "
    "happening, tell the application's developers: its sign-in link is not set up correctly."
)


def log_error(request: Request, exc: OAuthError) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(exc.error).inc()
    if exc.detail or exc.status_code >= 500:
        log.info("%s %s -> %s: %s", request.method, request.url.path, exc.error, exc.detail or "")


def json_error(request: Request, exc: OAuthError) -> Response:
    log_error(request, exc)
    return error_response(exc)


def page_error(request: Request, pages: Pages, exc: OAuthError) -> Response:
    log_error(request, exc)
    status = exc.status_code if 400 <= exc.status_code < 600 else 400
    return pages.error(
        title="This sign-in request cannot continue",
        message=exc.description or exc.error,
        advice=PAGE_ADVICE,
        status=status,
        code=exc.error,
    )


def form_error(request: Request, pages: Pages, exc: OAuthError) -> Response:
    """The page answering a posted form that could not be read: too slow (408, and the
    connection is closed), too large (413) or malformed (400)."""
    if not isinstance(exc, RequestTimeout):
        return page_error(request, pages, exc)
    log_error(request, exc)
    response = pages.error(
        title="The form took too long to arrive",
        message=exc.description,
        advice="Check your connection, go back and send the form again.",
        status=exc.status_code,
        code="request_timeout",
    )
    response.headers.update(exc.headers)
    return response


def redirect_error(request: Request, exc: RedirectError, issuer: str, *, status: int) -> Response:
    log_error(request, exc.error)
    return RedirectResponse(error_redirect_url(exc, issuer), status_code=status)
