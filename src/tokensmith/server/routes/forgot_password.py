"""The forgotten-password page (``core.self_service``): the same answer, status and store work
for every login typed, whether or not it names an account; the link goes out from the
background mailer, so no answer waits on the mail server."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected, PageNotOffered
from tokensmith.core.interaction import well_formed_txn
from tokensmith.core.self_service import FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import login_url, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

FORM = "forgot_password"
FORGED = "The form was not sent from this page. Reload the page and try again."


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    login: str = "",
    txn: str | None = None,
) -> Response:
    answer = answer or FormAnswer()
    response = rt.pages.render(
        "forgot_password.html",
        status=answer.status,
        action=rt.settings.forgot_password_path,
        csrf_token=rt.cookies.csrf_token(browser, FORM),
        login_url=login_url(rt, txn),
        txn=well_formed_txn(txn),
        message=answer.message,
        error=answer.error,
        login=login,
    )
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return rt.cookies.apply(response, browser)


def check_open(rt: Runtime) -> None:
    if not rt.server.policy.accounts.reset_open:
        raise PageNotOffered("Password reset by e-mail is not offered here.")


async def forgot_form(request: Request) -> Response:
    rt = runtime(request)
    try:
        check_open(rt)
    except PageNotOffered as exc:
        return page_error(request, rt.pages, exc)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
    return page(rt, browser, txn=request.query_params.get("txn"))


async def forgot_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=400)
    if isinstance(form, Response):
        return form
    address = request.client.host if request.client else "unknown"
    login = form.get("login", "")
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            check_open(rt)
            if not rt.cookies.check_csrf(request, browser, FORM, form.get("csrf_token", "")):
                raise CsrfRejected(FORGED)
        except (CsrfRejected, PageNotOffered) as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        answer = await rt.self_service.request_reset(
            stores, login, address=address, notify=rt.mailer.notify
        )
    return page(rt, browser, answer, login=login if answer.error else "", txn=form.get("txn"))
