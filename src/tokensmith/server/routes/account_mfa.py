"""The account page's two-step verification forms (``core.account_mfa``): set up an
authenticator app (with the password; a QR code and the key as text, confirmed with a code),
new recovery codes, turning it off with the password and a code, and adding (with the
password) or removing (with the password) a passkey.

Every form carries the account page's CSRF token and is throttled (``core.mfa``). The QR code
is an SVG ``data:`` image (the pages' CSP allows ``img-src 'self' data:``; no script, no
inline style). Pages that show a key or recovery codes are ``no-store`` like every page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from tokensmith.core import account_mfa, passkeys
from tokensmith.core.account_mfa import RecoveryCodesIssued, Refused, TotpEnrolmentPage
from tokensmith.core.errors import CsrfRejected, HashingBusy, OAuthError
from tokensmith.core.interaction import KEEP, SessionChange
from tokensmith.core.models import Session
from tokensmith.core.passwords import PasswordCheck
from tokensmith.core.ports import Stores
from tokensmith.core.server import AuthorizationServer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.account import CSRF_ADVICE
from tokensmith.server.routes.interaction import client_address, options_response, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

FORBIDDEN = "The form was not sent from your account page."


def paths(account_path: str) -> dict[str, str]:
    """The URLs of the forms, under the account page's path."""
    return {
        "totp": f"{account_path}/mfa/totp",
        "confirm": f"{account_path}/mfa/totp/confirm",
        "disable": f"{account_path}/mfa/totp/disable",
        "recovery_codes": f"{account_path}/mfa/recovery-codes",
        "passkey_options": f"{account_path}/passkeys/options",
        "passkeys": f"{account_path}/passkeys",
        "passkey_remove": f"{account_path}/passkeys/remove",
    }


def qr_data_uri(uri: str) -> str:
    """The ``otpauth://`` URI as a QR code: an SVG ``data:`` URI (dark on white, with the quiet
    zone, readable in dark mode too)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=4, light="#fff"))


def _check(request: Request, rt: Runtime, browser: Browser, form: dict[str, str]) -> None:
    if not rt.cookies.check_csrf(request, browser, "account", form.get("csrf_token", "")):
        raise CsrfRejected(FORBIDDEN)


def _enrolment(rt: Runtime, browser: Browser, page: TotpEnrolmentPage) -> Response:
    response = rt.pages.render(
        "account_totp.html",
        status=page.status,
        action=paths(rt.settings.account_path)["confirm"],
        account=rt.settings.account_path,
        csrf_token=rt.cookies.csrf_token(browser, "account"),
        username=page.username,
        secret=" ".join(page.secret[i : i + 4] for i in range(0, len(page.secret), 4)),
        qr=qr_data_uri(page.uri),
        error=page.error,
    )
    if page.retry_after:
        response.headers["Retry-After"] = str(page.retry_after)
    return response


def _codes(rt: Runtime, issued: RecoveryCodesIssued) -> Response:
    return rt.pages.render(
        "recovery_codes.html",
        codes=list(issued.codes),
        enrolled=issued.enrolled,
        account=rt.settings.account_path,
    )


def _refused(rt: Runtime, refused: Refused) -> Response:
    response = rt.pages.error(
        title="Two-step verification",
        message=refused.error,
        advice="Go back to your account page and try again.",
        status=refused.status,
        code="mfa",
    )
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


async def _posted(request: Request, rt: Runtime) -> dict[str, str] | Response:
    return await read_posted_form(request, rt, max_value_length=1024)


def _error_page(request: Request, rt: Runtime, exc: OAuthError) -> Response:
    """A form refused by the core: the error page (a wrong CSRF token: with the account
    page's advice)."""
    advice = CSRF_ADVICE if isinstance(exc, CsrfRejected) else None
    return page_error(request, rt.pages, exc, advice=advice)


async def _start_password_form(
    request: Request, rt: Runtime, form: dict[str, str]
) -> tuple[Browser, account_mfa.DisableStarted] | Response:
    """Step 1 of a form that needs the password, in its own short transaction: the CSRF
    token checked and the attempt reserved (committed before argon2 runs with no transaction
    held, as at the login page). A ``Response``: refused."""
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            _check(request, rt, browser, form)
            started = await account_mfa.begin_password_form(
                rt.server, stores, browser.session, address=client_address(request)
            )
        except OAuthError as exc:
            return rt.cookies.apply(_error_page(request, rt, exc), browser)
        if started.refused is not None:
            return rt.cookies.apply(_refused(rt, started.refused), browser)
    return browser, started


class _CodeStep(Protocol[_T_co]):
    """A core step of a form with a code (``account_mfa.confirm_totp``, ...)."""

    def __call__(
        self,
        server: AuthorizationServer,
        stores: Stores,
        session: Session | None,
        code: str,
        *,
        address: str,
    ) -> Awaitable[_T_co]: ...


async def _code_form(
    request: Request,
    rt: Runtime,
    step: _CodeStep[_T],
    page: Callable[[Browser, _T], tuple[Response, SessionChange]],
) -> Response:
    """A form with a code, in one transaction: its CSRF token checked, ``step`` given the
    code, and ``page`` of its answer (with how the session cookie changes)."""
    form = await _posted(request, rt)
    if isinstance(form, Response):
        return form
    change: SessionChange = KEEP
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            _check(request, rt, browser, form)
            done = await step(
                rt.server,
                stores,
                browser.session,
                form.get("code", ""),
                address=client_address(request),
            )
        except OAuthError as exc:
            response = _error_page(request, rt, exc)
        else:
            response, change = page(browser, done)
    return rt.cookies.apply(response, browser, change)


async def _password_form(
    request: Request,
    rt: Runtime,
    finish: Callable[
        [Stores, account_mfa.DisableStarted, PasswordCheck, dict[str, str]], Awaitable[_T]
    ],
    done: str,
    *,
    max_value_length: int = 1024,
) -> Response:
    """A form that needs the password, in two short transactions around the password check,
    as at the login page: the attempt reserved and committed (``_start_password_form``), the
    password checked on the worker pool with no transaction held, then ``finish`` (given the
    posted form) in a transaction of its own. ``Refused``: the refusal page; otherwise a 303 to
    ``done``, with the session change ``finish`` answered, if any."""
    form = await read_posted_form(request, rt, max_value_length=max_value_length)
    if isinstance(form, Response):
        return form
    first = await _start_password_form(request, rt, form)
    if isinstance(first, Response):
        return first
    browser, started = first
    try:
        check = await account_mfa.check_password(rt.server, started, form.get("password", ""))
    except HashingBusy:  # the 503 page; the attempt reserved in step 1 is given back
        async with rt.db.transaction() as stores:
            await account_mfa.give_back(stores, started)
        raise
    async with rt.db.transaction() as stores:
        finished = await finish(stores, started, check, form)
    if isinstance(finished, Refused):
        return rt.cookies.apply(_refused(rt, finished), browser)
    change = finished if isinstance(finished, SessionChange) else KEEP
    return rt.cookies.apply(RedirectResponse(done, 303), browser, change)


async def begin_totp(request: Request) -> Response:
    """Set up an authenticator app, with the password. The page is then shown by a GET
    (reloadable, and the key is never in a URL)."""
    rt = runtime(request)
    return await _password_form(
        request,
        rt,
        lambda stores, started, check, _form: account_mfa.begin_totp(
            rt.server, stores, started, check
        ),
        paths(rt.settings.account_path)["totp"],
    )


async def totp_page(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            page = await account_mfa.totp_page(rt.server, stores, browser.session)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            if page is None:
                response = RedirectResponse(rt.settings.account_path, 303)
            else:
                response = _enrolment(rt, browser, page)
    return rt.cookies.apply(response, browser)


async def confirm_totp(request: Request) -> Response:
    """Confirm the new authenticator with a code: the recovery codes, and a multi-factor
    session (a new id)."""
    rt = runtime(request)

    def page(
        browser: Browser, done: TotpEnrolmentPage | RecoveryCodesIssued | None
    ) -> tuple[Response, SessionChange]:
        if done is None:
            return RedirectResponse(rt.settings.account_path, 303), KEEP
        if isinstance(done, TotpEnrolmentPage):
            return _enrolment(rt, browser, done), KEEP
        return _codes(rt, done), done.session

    return await _code_form(request, rt, account_mfa.confirm_totp, page)


async def regenerate_recovery_codes(request: Request) -> Response:
    """New recovery codes, with a code."""
    rt = runtime(request)
    return await _code_form(
        request,
        rt,
        account_mfa.regenerate_recovery_codes,
        lambda _browser, done: (
            _refused(rt, done) if isinstance(done, Refused) else _codes(rt, done),
            KEEP,
        ),
    )


async def disable_totp(request: Request) -> Response:
    """Turn the authenticator off, with the password and a code."""
    rt = runtime(request)
    return await _password_form(
        request,
        rt,
        lambda stores, started, check, form: account_mfa.finish_disable(
            rt.server, stores, started, check, form.get("code", "")
        ),
        rt.settings.account_path,
    )


async def passkey_options(request: Request) -> Response:
    """The ``navigator.credentials.create`` options (a CSRF-checked POST from the account
    page), bound to the session."""
    rt = runtime(request)
    form = await _posted(request, rt)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            _check(request, rt, browser, form)
            options = await account_mfa.passkey_registration_options(
                rt.server, stores, browser.session
            )
        except OAuthError as exc:
            response: Response = JSONResponse(
                {"error": exc.error}, status_code=exc.status_code, headers=exc.headers
            )
        else:
            response = options_response(options)
    return rt.cookies.apply(response, browser)


async def register_passkey(request: Request) -> Response:
    """Add a passkey, with the password."""
    rt = runtime(request)
    return await _password_form(
        request,
        rt,
        lambda stores, started, check, form: account_mfa.register_passkey(
            rt.server, stores, started, check, form.get("credential", ""), form.get("name", "")
        ),
        rt.settings.account_path + "#passkeys",
        max_value_length=passkeys.MAX_RESPONSE,
    )


async def remove_passkey(request: Request) -> Response:
    """Remove a passkey, with the password."""
    rt = runtime(request)
    return await _password_form(
        request,
        rt,
        lambda stores, started, check, form: account_mfa.finish_remove_passkey(
            rt.server, stores, started, check, form.get("passkey", "")
        ),
        rt.settings.account_path + "#passkeys",
    )
