"""The sign-in's second step: ``GET`` shows the code form, ``POST`` checks the code
(``core.interaction.second_factor_page`` / ``submit_second_factor``, ``core.mfa``).

The form carries the interaction's CSRF token; attempts are throttled per account and per
address; a successful code gives the browser a new session id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokensmith.core import interaction, passkeys
from tokensmith.core.errors import OAuthError
from tokensmith.core.interaction import KEEP, SecondFactorForm, SessionChange
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import check_form, outcome_response, read_posted_form
from tokensmith.server.routes.login import options_response
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def _page(rt: Runtime, browser: Browser, form: SecondFactorForm) -> Response:
    response = rt.pages.render(
        "mfa.html",
        status=form.status,
        action=rt.settings.mfa_path,
        txn=form.txn,
        csrf_token=rt.cookies.csrf_token(browser, form.txn),
        client_name=form.client_name,
        username=form.username,
        factors=form.factors,
        error=form.error,
    )
    if "passkey" in form.factors:
        response.headers["Content-Security-Policy"] = SCRIPT_CSP
    if form.retry_after:
        response.headers["Retry-After"] = str(form.retry_after)
    return response


async def mfa_form(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            shown = await interaction.second_factor_page(
                rt.server, stores, browser, request.query_params.get("txn")
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=302)
        else:
            if isinstance(shown, SecondFactorForm):
                response = _page(rt, browser, shown)
            else:
                response = outcome_response(request, rt, shown, status=302)
    return rt.cookies.apply(response, browser)


async def mfa_submit(request: Request) -> Response:
    rt = runtime(request)
    posted = await read_posted_form(request, rt, max_value_length=passkeys.MAX_RESPONSE)
    if isinstance(posted, Response):
        return posted
    address = request.client.host if request.client else "unknown"
    change: SessionChange = KEEP
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            txn = check_form(request, rt, browser, posted)
            done = await interaction.submit_second_factor(
                rt.server,
                stores,
                browser,
                txn,
                posted.get("factor", ""),
                posted.get("code", ""),
                address=address,
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=303)
        else:
            if isinstance(done, SecondFactorForm):
                response = _page(rt, browser, done)
            else:
                change = done.session
                response = outcome_response(request, rt, done, status=303)
    return rt.cookies.apply(response, browser, change)


async def passkey_options(request: Request) -> Response:
    """The options of the second step's "Use a passkey" (a CSRF-checked POST)."""
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
                second_factor=True,
                address=request.client.host if request.client else "unknown",
            )
        except OAuthError as exc:
            response: Response = JSONResponse(
                {"error": exc.error}, status_code=exc.status_code, headers=exc.headers
            )
        else:
            response = options_response(options)
    return rt.cookies.apply(response, browser)
