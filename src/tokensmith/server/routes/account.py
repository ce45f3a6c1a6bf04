"""``/account`` (``core.account``): the signed-in user sees which applications they consented
to, and removes one (OAuth 2.1 §7.9 consent phishing: users must be able to see and withdraw
what they granted). The form carries a CSRF token.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import account as accounts
from tokensmith.core.errors import CsrfRejected, OAuthError
from tokensmith.server.errors import page_error
from tokensmith.server.middleware import SCRIPT_CSP
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.state import runtime

CSRF_ADVICE = "Reload the page and try again."


async def account(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            page = await accounts.page(stores, browser.session, factors=rt.server.factors)
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


def _day(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
