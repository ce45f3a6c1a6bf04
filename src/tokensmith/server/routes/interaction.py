"""Shared steps of the login, second-step and consent pages: read a posted form (before any
database work), check the CSRF token of the form, and render what ``core.interaction`` decided:
another page, or the client's redirect URI (a 303 after a form, RFC 9700 §4.12). And the two
sign-in pages' shared handlers: the passkey options, and a posted step (a passkey, a code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from tokensmith.core import interaction, passkeys
from tokensmith.core.errors import CsrfRejected, OAuthError
from tokensmith.core.interaction import (
    KEEP,
    AuthorizeOutcome,
    LoginForm,
    SessionChange,
    SignInChanged,
    well_formed_txn,
)
from tokensmith.core.ports import Stores
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error, page_error
from tokensmith.server.http import read_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

_Form = TypeVar("_Form")

FORBIDDEN = "The form was not sent from this sign-in page (its security token is missing or wrong)."


def login_url(rt: Runtime, txn: str | None) -> str | None:
    """The login page of the sign-in ``txn`` when it is well formed (the sign-up and
    forgotten-password pages link back to the sign-in they were opened from); else none (the
    bare login page is no sign-in: it answers "expired")."""
    txn = well_formed_txn(txn)
    if txn is None:
        return None
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


def answer_response(
    request: Request,
    rt: Runtime,
    browser: Browser,
    answer: _Form | AuthorizeOutcome,
    page: Callable[[Runtime, Browser, _Form], Response],
) -> tuple[Response, SessionChange]:
    """What a posted sign-in form answered: its page again (``page``), or where the browser
    goes next (a 303) with how its session cookie changes."""
    if isinstance(answer, AuthorizeOutcome):
        return outcome_response(request, rt, answer, status=303), answer.session
    return page(rt, browser, answer), KEEP


async def submit_step(
    request: Request,
    step: Callable[
        [Runtime, Stores, Browser, str, dict[str, str]], Awaitable[_Form | AuthorizeOutcome]
    ],
    page: Callable[[Runtime, Browser, _Form], Response],
    *,
    login_page: Callable[[Runtime, Browser, LoginForm], Response],
) -> Response:
    """A posted sign-in step (a passkey at the login page, a code or a passkey at the second
    step), in one transaction: the form (large enough for a passkey's answer) and its CSRF
    token checked, then ``step`` given the interaction id and the form. A step refused because
    the account changed since the password step (``SignInChanged``) is rolled back whole and
    answered with the sign-in's login page (``login_page``)."""
    rt = runtime(request)
    posted = await read_posted_form(request, rt, max_value_length=passkeys.MAX_RESPONSE)
    if isinstance(posted, Response):
        return posted
    change: SessionChange = KEEP
    try:
        async with rt.db.transaction() as stores:
            browser = await rt.cookies.load(request, stores, rt.server.now())
            try:
                txn = check_form(request, rt, browser, posted)
                answer = await step(rt, stores, browser, txn, posted)
            except OAuthError as exc:
                response = browser_error(
                    request, rt.pages, exc, issuer=rt.server.issuer, status=303
                )
            else:
                response, change = answer_response(request, rt, browser, answer, page)
    except SignInChanged as exc:  # rolled back: no session, no code, no factor used up
        response = login_page(rt, browser, exc.form)
    return rt.cookies.apply(response, browser, change)


def client_address(request: Request) -> str:
    """The client's address, for the throttling counters and the audit log."""
    return request.client.host if request.client else "unknown"


def options_response(options: str | None) -> Response:
    """WebAuthn options as JSON (``no-store``), or 404 when there is nothing to ask for."""
    if options is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})


async def sign_in_passkey_options(request: Request, *, second_factor: bool) -> Response:
    """The ``navigator.credentials.get`` options of a sign-in page's passkey button (a
    CSRF-checked POST): passwordless at the login page, or the second step's."""
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            txn = check_form(request, rt, browser, posted)
            options = await interaction.passkey_options(
                rt.server,
                stores,
                browser,
                txn,
                second_factor=second_factor,
                address=client_address(request),
            )
        except OAuthError as exc:
            response: Response = JSONResponse(
                {"error": exc.error}, status_code=exc.status_code, headers=exc.headers
            )
        else:
            response = options_response(options)
    return rt.cookies.apply(response, browser)
