"""Shared steps of the login and consent pages: read a posted form (before any database work),
find the pending interaction of this browser, check the CSRF token of the form, and finish with a
303 (RFC 9700 §4.12)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.authorize import RedirectError
from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.core.models import Interaction
from tokensmith.core.ports import Stores
from tokensmith.core.secrets import INTERACTION_PREFIX
from tokensmith.core.server import AuthorizeOutcome
from tokensmith.server.browser import Browser
from tokensmith.server.errors import form_error, page_error, redirect_error
from tokensmith.server.http import read_form
from tokensmith.server.routes.authorize import outcome_response
from tokensmith.server.runtime import Runtime

_TXN = re.compile(re.escape(INTERACTION_PREFIX) + r"[A-Za-z0-9_-]+")
EXPIRED = (
    "This sign-in page has expired or was opened in another browser. Go back to the "
    "application and sign in again."
)


def expired_page(rt: Runtime) -> Response:
    return rt.pages.error(
        title="This sign-in page has expired",
        message=EXPIRED,
        advice="For your safety, sign-in pages work for a few minutes and in one browser only.",
        status=400,
        code="interaction_expired",
    )


def forbidden_page(rt: Runtime) -> Response:
    return rt.pages.error(
        title="The form could not be accepted",
        message="The form was not sent from this sign-in page (its security token is missing "
        "or wrong).",
        advice="Reload the sign-in page and try again. Cookies must be enabled for this site.",
        status=403,
        code="csrf",
    )


async def load_interaction(
    rt: Runtime, stores: Stores, browser: Browser, txn: str | None
) -> Interaction | None:
    # Only ids this server could have issued reach the database (a NUL, for one, is an error
    # in PostgreSQL rather than "not found").
    if not txn or len(txn) > 100 or not _TXN.fullmatch(txn):
        return None
    return await rt.server.load_interaction(txn, browser.browser_digest, stores)


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
        return form_error(request, rt.pages, exc)


async def read_post(
    request: Request, rt: Runtime, stores: Stores, form: dict[str, str]
) -> tuple[Browser, dict[str, str], Interaction | None, Response | None]:
    """Browser and interaction of a posted ``form`` (:func:`read_posted_form`), or the response
    that refuses it."""
    browser = await rt.cookies.load(request, stores, rt.server.now())
    txn = form.get("txn", "")
    if not rt.cookies.check_csrf(request, browser, txn, form.get("csrf_token", "")):
        return browser, form, None, forbidden_page(rt)
    interaction = await load_interaction(rt, stores, browser, txn)
    if interaction is None:
        return browser, form, None, expired_page(rt)
    return browser, form, interaction, None


async def finish(
    request: Request,
    rt: Runtime,
    stores: Stores,
    browser: Browser,
    interaction: Interaction,
    *,
    consent_given: bool = False,
) -> Response:
    """Continue the authorization after a login or consent: another page, or the client."""
    try:
        outcome: AuthorizeOutcome = await rt.server.proceed(
            interaction.request,
            stores,
            session=browser.session,
            browser_digest=browser.browser_digest,
            interaction=interaction,
            consent_given=consent_given,
        )
    except RedirectError as exc:
        await stores.interactions.delete(interaction.id)
        return redirect_error(request, exc, rt.server.issuer, status=303)
    except InvalidRequest as exc:
        return page_error(request, rt.pages, exc)
    return outcome_response(rt, outcome, status=303)
