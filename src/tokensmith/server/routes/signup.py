"""The sign-up page (``core.self_service``): ``GET`` shows the form, ``POST`` checks the
operator's rules and the throttles (first transaction), hashes the password on the hashing pool
(no transaction held), then sends the link (second transaction). Every address gets the same
answer; the account is created when the link is followed (``routes/confirm.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected, PageNotOffered
from tokensmith.core.interaction import well_formed_txn
from tokensmith.core.password_rules import WeakPassword
from tokensmith.core.self_service import FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import login_url, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

FORM = "signup"
FORGED = "The form was not sent from this sign-up page. Reload the page and try again."


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    *,
    email: str = "",
    name: str = "",
    txn: str | None = None,
) -> Response:
    answer = answer or FormAnswer()
    response = rt.pages.render(
        "signup.html",
        status=answer.status,
        action=rt.settings.signup_path,
        csrf_token=rt.cookies.csrf_token(browser, FORM),
        login_url=login_url(rt, txn),
        txn=well_formed_txn(txn),
        min_length=rt.self_service.rules.min_length,
        message=answer.message,
        error=answer.error,
        email=email,
        person_name=name,
    )
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return rt.cookies.apply(response, browser)


def check_open(rt: Runtime) -> None:
    if not rt.server.policy.accounts.signup_open:
        raise PageNotOffered("Sign-up is not offered here.")


async def signup_form(request: Request) -> Response:
    rt = runtime(request)
    try:
        check_open(rt)
    except PageNotOffered as exc:
        return page_error(request, rt.pages, exc)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
    return page(rt, browser, txn=request.query_params.get("txn"))


async def signup_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=1024)
    if isinstance(form, Response):
        return form
    address = request.client.host if request.client else "unknown"
    email, name, password = form.get("email", ""), form.get("name", ""), form.get("password", "")
    txn = form.get("txn")
    service = rt.self_service
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            check_open(rt)
            if not rt.cookies.check_csrf(request, browser, FORM, form.get("csrf_token", "")):
                raise CsrfRejected(FORGED)
        except (CsrfRejected, PageNotOffered) as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        start = await service.begin_signup(stores, email=email, name=name, address=address)
    if start.answer is not None:
        return page(rt, browser, start.answer, email=email, name=name, txn=txn)
    try:
        password_hash = await service.choose_password(password, context=(start.email,))
    except WeakPassword as exc:
        return page(rt, browser, FormAnswer(error=str(exc)), email=email, name=name, txn=txn)
    async with rt.db.transaction() as stores:
        answer = await service.finish_signup(stores, start, password_hash, notify=rt.mailer.notify)
    return page(rt, browser, answer, txn=txn)
