"""The page of a password-reset link (``core.self_service``): ``GET`` shows the form when the
link is valid (nothing is used); the ``POST`` (CSRF-checked, throttled per address) checks the new
password against the rules, hashes it on the hashing pool with no transaction held, then uses
the link and ends every session and grant of the user. Served ``no-store``; the pages' policy
is ``no-referrer``, so the link's secret leaks through no ``Referer``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected
from tokensmith.core.password_rules import WeakPassword
from tokensmith.core.self_service import LINK_INVALID, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

FORM = "reset_password"
FORGED = "The form was not sent from this page. Open the link from your message again."
NO_STORE = {"Cache-Control": "no-store"}


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    *,
    token: str = "",
    email: str = "",
    invalid: bool = False,
) -> Response:
    answer = answer or FormAnswer()
    response = rt.pages.render(
        "reset_password.html",
        status=answer.status,
        headers=NO_STORE,
        action=rt.settings.reset_password_path,
        csrf_token=rt.cookies.csrf_token(browser, FORM),
        login_url=rt.settings.login_path,
        forgot_url=rt.settings.forgot_password_path,
        min_length=rt.self_service.rules.min_length,
        message=answer.message,
        error=answer.error,
        invalid=invalid,
        token=token,
        email=email,
    )
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return rt.cookies.apply(response, browser)


async def reset_form(request: Request) -> Response:
    rt = runtime(request)
    token = request.query_params.get("token", "")
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        view = await rt.self_service.view_link(stores, token)
    if view.purpose != "reset_password":
        return page(rt, browser, FormAnswer(error=LINK_INVALID, status=400), invalid=True)
    return page(rt, browser, token=token, email=view.email)


async def reset_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=1024)
    if isinstance(form, Response):
        return form
    address = request.client.host if request.client else "unknown"
    token = form.get("token", "")
    service = rt.self_service
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        if not rt.cookies.check_csrf(request, browser, FORM, form.get("csrf_token", "")):
            return rt.cookies.apply(page_error(request, rt.pages, CsrfRejected(FORGED)), browser)
        start = await service.begin_reset(stores, token, address=address)
    if start.answer is not None or start.user is None:
        answer = start.answer or FormAnswer(error=LINK_INVALID, status=400)
        return page(rt, browser, answer, invalid=answer.status == 400)
    user = start.user
    try:
        password_hash = await service.choose_password(
            form.get("password", ""), context=(user.username, user.email)
        )
    except WeakPassword as exc:
        return page(rt, browser, FormAnswer(error=str(exc)), token=token, email=user.email or "")
    async with rt.db.transaction() as stores:
        answer = await service.finish_reset(stores, start, password_hash, notify=rt.mailer.notify)
    return page(rt, browser, answer, invalid=answer.status == 400)
