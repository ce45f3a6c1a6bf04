"""The login page: ``GET`` shows the form, ``POST`` checks the password (``core.interaction``,
``core.login``).

A wrong password and an unknown user get the same message, status and (through the hasher's
dummy verification) the same time. A successful login creates a new session id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokensmith.core import interaction, passkeys
from tokensmith.core.errors import OAuthError
from tokensmith.core.interaction import KEEP, LoginForm, SessionChange
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import check_form, outcome_response, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def _login_page(rt: Runtime, browser: Browser, form: LoginForm) -> Response:
    response = rt.pages.render(
        "login.html",
        status=form.status,
        action=rt.settings.login_path,
        txn=form.txn,
        csrf_token=rt.cookies.csrf_token(browser, form.txn),
        client_name=form.client_name,
        username=form.username,
        error=form.error,
        passkey_action=rt.settings.login_path + "/passkey",
        signup_url=rt.settings.signup_path if rt.server.policy.accounts.signup_open else None,
        forgot_url=(
            rt.settings.forgot_password_path if rt.server.policy.accounts.reset_open else None
        ),
    )
    response.headers["Content-Security-Policy"] = SCRIPT_CSP
    if form.retry_after:
        response.headers["Retry-After"] = str(form.retry_after)
    return response


async def login_form(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            form = await interaction.login_page(
                rt.server, stores, browser, request.query_params.get("txn")
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=302)
        else:
            response = _login_page(rt, browser, form)
    return rt.cookies.apply(response, browser)


async def login_submit(request: Request) -> Response:
    """Two short transactions around the password check (``core.login``): the first reserves
    the attempt on the throttling counters and is committed before argon2 runs, on the worker
    pool, with no transaction or connection held; the second concludes the login."""
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    address = request.client.host if request.client else "unknown"
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            txn = check_form(request, rt, browser, posted)
            started = await interaction.begin_login(
                rt.server, stores, browser, txn, posted.get("username", ""), address=address
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=303)
            return rt.cookies.apply(response, browser)
        if started.form is not None:
            return rt.cookies.apply(_login_page(rt, browser, started.form), browser)
    check = await interaction.check_password(rt.server, started, posted.get("password", ""))
    change: SessionChange = KEEP
    async with rt.db.transaction() as stores:
        try:
            done = await interaction.finish_login(rt.server, stores, browser, started, check)
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=303)
        else:
            if isinstance(done, LoginForm):
                response = _login_page(rt, browser, done)
            else:
                change = done.session
                response = outcome_response(request, rt, done, status=303)
    return rt.cookies.apply(response, browser, change)


def options_response(options: str | None) -> Response:
    """WebAuthn options as JSON (``no-store``), or 404 when there is nothing to ask for."""
    if options is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})


async def passkey_options(request: Request) -> Response:
    """The options of "Sign in with a passkey" (a CSRF-checked POST from the login page)."""
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
                second_factor=False,
                address=request.client.host if request.client else "unknown",
            )
        except OAuthError as exc:
            response: Response = JSONResponse(
                {"error": exc.error}, status_code=exc.status_code, headers=exc.headers
            )
        else:
            response = options_response(options)
    return rt.cookies.apply(response, browser)


async def passkey_submit(request: Request) -> Response:
    """Passwordless sign-in with a passkey (``core.interaction.submit_passkey_sign_in``)."""
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
            done = await interaction.submit_passkey_sign_in(
                rt.server, stores, browser, txn, posted.get("credential", ""), address=address
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=303)
        else:
            if isinstance(done, LoginForm):
                response = _login_page(rt, browser, done)
            else:
                change = done.session
                response = outcome_response(request, rt, done, status=303)
    return rt.cookies.apply(response, browser, change)
