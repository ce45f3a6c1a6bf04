"""Shared steps of the login and consent pages: read a posted form (before any database work),
check the CSRF token of the form, and render what ``core.interaction`` decided: another page, or
the client's redirect URI (a 303 after a form, RFC 9700 §4.12)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core.errors import CsrfRejected, OAuthError
from tokensmith.core.interaction import AuthorizeOutcome, well_formed_txn
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error, page_error
from tokensmith.server.http import read_form
from tokensmith.server.runtime import Runtime

FORBIDDEN = "The form was not sent from this sign-in page (its security token is missing or wrong)."


def login_url(rt: Runtime, txn: str | None) -> str:
    """The login page: of the sign-in ``txn`` when it is well formed (the sign-up and
    forgotten-password pages link back to the sign-in they were opened from), else bare."""
    txn = well_formed_txn(txn)
    if txn is None:
        return rt.settings.login_path
    return f"{rt.settings.login_path}?{urlencode({'txn': txn})}"


def outcome_response(
    request: Request, rt: Runtime, outcome: AuthorizeOutcome, *, status: int
) -> Response:
    """A redirect to the client (a code or an error), or to the login or consent page of the
    interaction."""
    if outcome.error is not None:
        return browser_error(
            request, rt.pages, outcome.error, issuer=rt.server.issuer, status=status
        )
    if outcome.location is not None:
        return RedirectResponse(outcome.location, status_code=status)
    path = {
        "login": rt.settings.login_path,
        "mfa": rt.settings.mfa_path,
    }.get(outcome.kind, rt.settings.consent_path)
    query = urlencode({"txn": outcome.interaction_id})
    return RedirectResponse(f"{path}?{query}", status_code=status)


async def read_posted_form(
    request: Request, rt: Runtime, *, max_value_length: int = 4096
) -> dict[str, str] | Response:
    """The posted form of a page, or the page that refuses it. Call it before opening a
    transaction: the body arrives at the client's pace, under ``form_read_timeout``, while no
    database connection is held."""
    try:
        return await read_form(
            request,
            limit=rt.settings.max_form_bytes,
            max_value_length=max_value_length,
            time_limit=rt.settings.form_read_timeout,
        )
    except OAuthError as exc:
        return page_error(request, rt.pages, exc)


def check_form(request: Request, rt: Runtime, browser: Browser, form: dict[str, str]) -> str:
    """The interaction id of a posted login or consent form whose CSRF token and origin are
    this browser's; ``CsrfRejected`` otherwise."""
    txn = form.get("txn", "")
    if not rt.cookies.check_csrf(request, browser, txn, form.get("csrf_token", "")):
        raise CsrfRejected(FORBIDDEN)
    return txn
