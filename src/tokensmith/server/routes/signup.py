"""The sign-up page (``core.self_service``): ``GET`` shows the form, ``POST`` checks the
operator's rules and the throttles (first transaction), hashes the password on the hashing pool
(no transaction held), then sends the link (second transaction). Every address gets the same
answer; the account is created when the link is followed (``routes/confirm.py``).

With an invitation (``/signup?invite=ts_iv_...``, the link an operator's invitation carries) the
same form has the invited address fixed; ``GET`` uses nothing, and the ``POST`` uses the
invitation and creates the account at once, its address verified. With ``signup=invite`` the page
without an invitation says that sign-up is by invitation only. The invitation pages are served
``no-store`` (the link's secret is in their URL and form)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected, PageNotOffered
from tokensmith.core.password_rules import WeakPassword
from tokensmith.core.self_service import INVITATION_INVALID, INVITATION_ONLY, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import read_posted_form
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
    invite: str = "",
    closed: bool = False,
) -> Response:
    """The page; ``invite``: the form of that invitation (its ``email`` fixed); ``closed``:
    the answer without a form."""
    answer = answer or FormAnswer()
    response = rt.pages.render(
        "signup.html",
        status=answer.status,
        action=rt.settings.signup_path,
        csrf_token=rt.cookies.csrf_token(browser, FORM),
        login_url=rt.settings.login_path,
        min_length=rt.self_service.rules.min_length,
        message=answer.message,
        error=answer.error,
        email=email,
        person_name=name,
        invite=invite,
        closed=closed,
    )
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return rt.cookies.apply(response, browser)


def check_open(rt: Runtime, *, invited: bool) -> None:
    """The page exists for public sign-up, and for invitations (``signup=invite``, where the page
    without one says so)."""
    accounts = rt.server.policy.accounts
    if not (
        accounts.invitations_open if invited else accounts.signup_open or accounts.invitations_open
    ):
        raise PageNotOffered("Sign-up is not offered here.")


async def signup_form(request: Request) -> Response:
    rt = runtime(request)
    invite = request.query_params.get("invite")
    try:
        check_open(rt, invited=invite is not None)
    except PageNotOffered as exc:
        return page_error(request, rt.pages, exc)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        view = await rt.self_service.view_invitation(stores, invite) if invite is not None else None
    if view is None:
        if not rt.server.policy.accounts.signup_open:
            return page(rt, browser, FormAnswer(error=INVITATION_ONLY, status=403), closed=True)
        return page(rt, browser)
    if view.purpose is None or invite is None:
        answer = FormAnswer(error=INVITATION_INVALID, status=400)
        return page(rt, browser, answer, closed=True)
    return page(rt, browser, email=view.email, name=view.name, invite=invite)


async def signup_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=1024)
    if isinstance(form, Response):
        return form
    address = request.client.host if request.client else "unknown"
    email, name, password = form.get("email", ""), form.get("name", ""), form.get("password", "")
    invite = form.get("invite")
    service = rt.self_service
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            check_open(rt, invited=invite is not None)
            if not rt.cookies.check_csrf(request, browser, FORM, form.get("csrf_token", "")):
                raise CsrfRejected(FORGED)
        except (CsrfRejected, PageNotOffered) as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        if invite is not None:
            start = await service.begin_invitation(stores, invite, name=name, address=address)
        else:
            start = await service.begin_signup(stores, email=email, name=name, address=address)
    if start.answer is not None:
        closed = (
            start.answer.status == 400
            if invite is not None
            else not rt.server.policy.accounts.signup_open
        )
        fixed = start.email or email
        return page(
            rt, browser, start.answer, email=fixed, name=name, invite=invite or "", closed=closed
        )
    try:
        password_hash = await service.choose_password(password, context=(start.email,))
    except WeakPassword as exc:
        email = start.email if invite is not None else email
        return page(
            rt, browser, FormAnswer(error=str(exc)), email=email, name=name, invite=invite or ""
        )
    async with rt.db.transaction() as stores:
        if invite is not None:
            answer = await service.accept_invitation(stores, start, password_hash)
        else:
            answer = await service.finish_signup(
                stores, start, password_hash, notify=rt.mailer.notify
            )
    return page(rt, browser, answer, closed=answer.error is not None)
