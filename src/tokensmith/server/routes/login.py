"""The login page: ``GET`` shows the form, ``POST`` checks the password (``core.interaction``,
``core.login``).

A wrong password and an unknown user get the same message, status and (through the hasher's
dummy verification) the same time. A successful login creates a new session id.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import interaction
from tokensmith.core.errors import OAuthError
from tokensmith.core.interaction import KEEP, LoginForm, SessionChange, SignInChanged
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import (
    answer_response,
    check_form,
    client_address,
    read_posted_form,
    sign_in_passkey_options,
    submit_step,
)
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def render_login_page(rt: Runtime, browser: Browser, form: LoginForm) -> Response:
    """The login page of ``form``'s sign-in (also the answer of a later step that sends the
    browser back to it, ``SignInChanged``)."""
    back = urlencode({"txn": form.txn})
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
        # both pages link back to this sign-in (routes/interaction.login_url)
        signup_url=(
            f"{rt.settings.signup_path}?{back}" if rt.server.policy.accounts.signup_open else None
        ),
        forgot_url=(
            f"{rt.settings.forgot_password_path}?{back}"
            if rt.server.policy.accounts.reset_open
            else None
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
            response = render_login_page(rt, browser, form)
    return rt.cookies.apply(response, browser)


async def login_submit(request: Request) -> Response:
    """Two short transactions around the password check (``core.login``): the first reserves
    the attempt on the throttling counters and is committed before argon2 runs, on the worker
    pool, with no transaction or connection held; the second concludes the login."""
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    address = client_address(request)
    # the hashing pool's place taken by step 1 is given back if step 2 never runs (the first
    # transaction failed to commit, the request was cancelled); a no-op once the job has it
    with contextlib.ExitStack() as places:
        async with rt.db.transaction() as stores:
            browser = await rt.cookies.load(request, stores, rt.server.now())
            try:
                txn = check_form(request, rt, browser, posted)
                started = await interaction.begin_login(
                    rt.server, stores, browser, txn, posted.get("username", ""), address=address
                )
            except OAuthError as exc:
                response = browser_error(
                    request, rt.pages, exc, issuer=rt.server.issuer, status=303
                )
                return rt.cookies.apply(response, browser)
            if started.admission is not None:
                places.callback(started.admission.close)
            if started.form is not None:
                return rt.cookies.apply(render_login_page(rt, browser, started.form), browser)
        check = await interaction.check_password(rt.server, started, posted.get("password", ""))
    change: SessionChange = KEEP
    try:
        async with rt.db.transaction() as stores:
            try:
                done = await interaction.finish_login(rt.server, stores, browser, started, check)
            except OAuthError as exc:
                response = browser_error(
                    request, rt.pages, exc, issuer=rt.server.issuer, status=303
                )
            else:
                response, change = answer_response(request, rt, browser, done, render_login_page)
    except SignInChanged as exc:  # rolled back: no session, no code, no hash upgraded
        response = render_login_page(rt, browser, exc.form)
    return rt.cookies.apply(response, browser, change)


async def passkey_options(request: Request) -> Response:
    """The options of "Sign in with a passkey" (a CSRF-checked POST from the login page)."""
    return await sign_in_passkey_options(request, second_factor=False)


async def passkey_submit(request: Request) -> Response:
    """Passwordless sign-in with a passkey (``core.interaction.submit_passkey_sign_in``)."""
    return await submit_step(
        request,
        lambda rt, stores, browser, txn, posted: interaction.submit_passkey_sign_in(
            rt.server,
            stores,
            browser,
            txn,
            posted.get("credential", ""),
            address=client_address(request),
        ),
        render_login_page,
        login_page=render_login_page,
    )
