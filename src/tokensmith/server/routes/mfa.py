"""The sign-in's second step: ``GET`` shows the code form, ``POST`` checks the code
(``core.interaction.second_factor_page`` / ``submit_second_factor``, ``core.mfa``).

The form carries the interaction's CSRF token; attempts are throttled per account and per
address; a successful code gives the browser a new session id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import interaction
from tokensmith.core.errors import OAuthError
from tokensmith.core.interaction import SecondFactorForm, SignInChanged
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import (
    client_address,
    outcome_response,
    sign_in_passkey_options,
    submit_step,
)
from tokensmith.server.routes.login import render_login_page
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
    try:
        async with rt.db.transaction() as stores:
            browser = await rt.cookies.load(request, stores, rt.server.now())
            try:
                shown = await interaction.second_factor_page(
                    rt.server, stores, browser, request.query_params.get("txn")
                )
            except OAuthError as exc:
                response = browser_error(
                    request, rt.pages, exc, issuer=rt.server.issuer, status=302
                )
            else:
                if isinstance(shown, SecondFactorForm):
                    response = _page(rt, browser, shown)
                else:
                    response = outcome_response(request, rt, shown, status=302)
    except SignInChanged as exc:  # the account changed since the password step
        response = render_login_page(rt, browser, exc.form)
    return rt.cookies.apply(response, browser)


async def mfa_submit(request: Request) -> Response:
    """The second step: a code (an authenticator's or a recovery code) or a passkey."""
    return await submit_step(
        request,
        lambda rt, stores, browser, txn, posted: interaction.submit_second_factor(
            rt.server,
            stores,
            browser,
            txn,
            posted.get("factor", ""),
            posted.get("code", ""),
            address=client_address(request),
        ),
        _page,
        login_page=render_login_page,
    )


async def passkey_options(request: Request) -> Response:
    """The options of the second step's "Use a passkey" (a CSRF-checked POST)."""
    return await sign_in_passkey_options(request, second_factor=True)
