"""The page of a sign-up or verification link (``core.self_service``): ``GET`` shows what the
link is for and a button, without using it (mail scanners fetch links); the button's ``POST``
(CSRF-checked) uses it: the account is created, or the address confirmed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected
from tokensmith.core.self_service import LINK_INVALID, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

FORM = "confirm"
FORGED = "The form was not sent from this page. Open the link from your message again."
NO_STORE = {"Cache-Control": "no-store"}


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    *,
    purpose: str | None = None,
    email: str = "",
    token: str = "",
) -> Response:
    answer = answer or FormAnswer()
    response = rt.pages.render(
        "confirm.html",
        status=answer.status,
        headers=NO_STORE,
        action=rt.settings.confirm_path,
        csrf_token=rt.cookies.csrf_token(browser, FORM),
        login_url=rt.settings.login_path,
        purpose=purpose,
        email=email,
        token=token,
        message=answer.message,
        error=answer.error,
    )
    return rt.cookies.apply(response, browser)


async def confirm_page(request: Request) -> Response:
    rt = runtime(request)
    token = request.query_params.get("token", "")
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        view = await rt.self_service.view_link(stores, token)
    if view.purpose not in ("signup", "verify_email"):
        return page(rt, browser, FormAnswer(error=LINK_INVALID, status=400))
    return page(rt, browser, purpose=view.purpose, email=view.email, token=token)


async def confirm_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=200)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        if not rt.cookies.check_csrf(request, browser, FORM, form.get("csrf_token", "")):
            return rt.cookies.apply(page_error(request, rt.pages, CsrfRejected(FORGED)), browser)
        answer = await rt.self_service.confirm(stores, form.get("token", ""))
    return page(rt, browser, answer)
