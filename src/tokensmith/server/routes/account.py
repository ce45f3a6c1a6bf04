"""``/account`` (``core.account``): the signed-in user sees which applications they consented
to, and removes one (OAuth 2.1 §7.9 consent phishing: users must be able to see and withdraw
what they granted). The form carries a CSRF token.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import account as accounts
from tokensmith.core import account_security as security
from tokensmith.core.accounts import DELETE, UPDATE_EMAIL, UPDATE_PASSWORD
from tokensmith.core.errors import CsrfRejected, OAuthError
from tokensmith.core.interaction import CLEAR, KEEP, SessionChange
from tokensmith.core.ports import Stores
from tokensmith.core.self_service import FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

CSRF_ADVICE = "Reload the page and try again."


async def account(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            page = await accounts.page(
                stores, browser.session, factors=rt.server.factors, users=rt.server.accounts
            )
            sessions = await security.sessions(rt.server, stores, browser.session)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            response = rt.pages.render(
                "account.html",
                action=rt.settings.account_path,
                csrf_token=rt.cookies.csrf_token(browser, "account"),
                username=page.username,
                apps=list(page.apps),
                email=page.email,
                verify_action=(
                    rt.settings.account_path + "/verify-email"
                    if page.email
                    and not page.email_verified
                    and rt.server.policy.accounts.verification_open
                    else None
                ),
                verification_sent=request.query_params.get("verification") == "sent",
                sessions=sessions,
                sessions_action=rt.settings.account_path + "/sessions/end",
                password_action=(
                    rt.settings.account_path + "/password"
                    if UPDATE_PASSWORD in rt.server.accounts.capabilities
                    else None
                ),
                password_changed=request.query_params.get("password") == "changed",
                email_action=(
                    rt.settings.account_path + "/email"
                    if UPDATE_EMAIL in rt.server.accounts.capabilities
                    and rt.server.policy.accounts.email_change_open
                    else None
                ),
                email_change_sent=request.query_params.get("email") == "sent",
                email_change_minutes=rt.server.policy.accounts.email_change_ttl // 60,
                delete_action=(
                    rt.settings.account_path + "/delete"
                    if DELETE in rt.server.accounts.capabilities
                    else None
                ),
                totp_enabled=page.totp_enabled,
                recovery_codes_left=page.recovery_codes_left,
                passkeys=[
                    {
                        "id": key.id,
                        "name": key.name,
                        "created": _day(key.created_at),
                        "last_used": _day(key.last_used_at) if key.last_used_at else None,
                    }
                    for key in page.passkeys
                ],
            )
            response.headers["Content-Security-Policy"] = SCRIPT_CSP
    return rt.cookies.apply(response, browser)


async def remove_app(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=200)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            accounts.signed_in(browser.session)
            if not rt.cookies.check_csrf(request, browser, "account", form.get("csrf_token", "")):
                raise CsrfRejected("The form was not sent from your account page.")
            await accounts.remove_app(rt.server, stores, browser.session, form.get("client_id", ""))
        except CsrfRejected as exc:
            response = page_error(request, rt.pages, exc, advice=CSRF_ADVICE)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            response = RedirectResponse(rt.settings.account_path, status_code=303)
    return rt.cookies.apply(response, browser)


async def request_verification(request: Request) -> Response:
    """The account page's "confirm my address" button: a verification link by e-mail
    (``core.self_service.SelfService.request_verification``), then back to the page."""
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=200)
    if isinstance(form, Response):
        return form
    address = request.client.host if request.client else "unknown"
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            accounts.signed_in(browser.session)
            if not rt.cookies.check_csrf(request, browser, "account", form.get("csrf_token", "")):
                raise CsrfRejected("The form was not sent from your account page.")
            answer = await rt.self_service.request_verification(
                stores, browser.session, address=address, notify=rt.mailer.notify
            )
        except CsrfRejected as exc:
            response = page_error(request, rt.pages, exc, advice=CSRF_ADVICE)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            if answer.error:
                response = rt.pages.error(
                    title="Your address cannot be confirmed now",
                    message=answer.error,
                    advice="Go back to your account page and try again later.",
                    status=answer.status,
                )
                if answer.retry_after:
                    response.headers["Retry-After"] = str(answer.retry_after)
            else:
                location = rt.settings.account_path + "?verification=sent"
                response = RedirectResponse(location, status_code=303)
    return rt.cookies.apply(response, browser)


# -- the security forms (core.account_security) ---------------------------------------------


def _refused(rt: Runtime, answer: FormAnswer, title: str) -> Response:
    response = rt.pages.error(
        title=title,
        message=answer.error or "",
        advice="Go back to your account page and try again.",
        status=answer.status,
    )
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return response


async def _account_form(
    request: Request, rt: Runtime, stores: Stores, browser: Browser, form: dict[str, str]
) -> None:
    """A form of the account page's security section: a session that used its second factor
    (``NotSignedIn`` otherwise) and the page's CSRF token (``CsrfRejected``)."""
    await accounts.fully_signed_in(rt.server.factors, stores, browser.session)
    if not rt.cookies.check_csrf(request, browser, "account", form.get("csrf_token", "")):
        raise CsrfRejected("The form was not sent from your account page.")


async def sign_out_everywhere(request: Request) -> Response:
    """End every session of the user, this one too (``core.account_security``)."""
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=200)
    if isinstance(form, Response):
        return form
    change: SessionChange = KEEP
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            await _account_form(request, rt, stores, browser, form)
            await security.sign_out_everywhere(rt.server, stores, browser.session)
        except CsrfRejected as exc:
            response = page_error(request, rt.pages, exc, advice=CSRF_ADVICE)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            change = CLEAR
            response = rt.pages.render("logged_out.html")
    return rt.cookies.apply(response, browser, change)


async def _begin_password_form(
    request: Request,
    rt: Runtime,
    form: dict[str, str],
    capability: str,
    *,
    title: str,
    refusal: FormAnswer | None = None,
) -> tuple[Browser, security.PasswordForm] | Response:
    """Step 1 of a form with the current password, in its own short transaction: a session
    that used its second factor, the page's CSRF token, then (unless the form is refused for
    what it asks, ``refusal``, before any attempt is counted) the attempt reserved."""
    address = request.client.host if request.client else "unknown"
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            await _account_form(request, rt, stores, browser, form)
            if refusal is not None:
                return rt.cookies.apply(_refused(rt, refusal, title), browser)
            service = security.AccountSecurity(rt.server)
            started = await service.begin(stores, browser.session, capability, address=address)
        except CsrfRejected as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc, advice=CSRF_ADVICE), browser)
        except OAuthError as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
    return browser, started


async def _password_form(request: Request, capability: str, *, change_password: bool) -> Response:
    """Password change or deletion: two short transactions around the password checks on the
    hashing pool, as the login (``core.account_security``)."""
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=1100)
    if isinstance(form, Response):
        return form
    service = security.AccountSecurity(rt.server)
    title = "Your password is not changed" if change_password else "Your account is not deleted"
    if change_password and form.get("new_password") != form.get(
        "new_password_again", form.get("new_password")
    ):
        differ = FormAnswer(error="The two new passwords differ.", status=400)
        return _refused(rt, differ, title)
    first = await _begin_password_form(request, rt, form, capability, title=title)
    if isinstance(first, Response):
        return first
    browser, started = first
    session = browser.session
    assert session is not None  # signed_in above
    if change_password:
        new = form.get("new_password", "")
        checked = await service.check(
            started, form.get("current_password", ""), new, rules=rt.self_service.rules
        )
    else:
        checked = await service.check(started, form.get("current_password", ""))
    change: SessionChange = KEEP
    async with rt.db.transaction() as stores:
        if change_password:
            answer = await service.finish_password_change(
                stores, checked, session, notify=rt.mailer.notify
            )
        else:
            answer = await service.finish_deletion(stores, checked)
    if answer.error:
        response = _refused(rt, answer, title)
    elif change_password:
        change = answer.session
        response = RedirectResponse(rt.settings.account_path + "?password=changed", 303)
    else:
        change = CLEAR
        response = rt.pages.render("account_deleted.html")
    return rt.cookies.apply(response, browser, change)


async def change_password(request: Request) -> Response:
    return await _password_form(request, UPDATE_PASSWORD, change_password=True)


async def delete_account(request: Request) -> Response:
    return await _password_form(request, DELETE, change_password=False)


async def change_email(request: Request) -> Response:
    """The e-mail change form: the new address checked as at sign-up, the current password
    checked as for a password change (two short transactions around it); then a link to the new
    address and a notice to the old one (``core.self_service``). The change happens when the
    link is used (``routes.confirm``)."""
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=1100)
    if isinstance(form, Response):
        return form
    title = "Your address is not changed"
    email, refusal = rt.self_service.new_email(form.get("new_email", ""))
    first = await _begin_password_form(
        request, rt, form, UPDATE_EMAIL, title=title, refusal=refusal
    )
    if isinstance(first, Response):
        return first
    browser, started = first
    service = security.AccountSecurity(rt.server)
    checked = await service.check(started, form.get("current_password", ""))
    async with rt.db.transaction() as stores:
        answer = await service.finish_email_change(
            stores,
            checked,
            email,
            self_service=rt.self_service,
            address=request.client.host if request.client else "unknown",
            notify=rt.mailer.notify,
        )
    if answer.error:
        response = _refused(rt, answer, title)
    else:
        response = RedirectResponse(rt.settings.account_path + "?email=sent", 303)
    return rt.cookies.apply(response, browser)


def _day(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
