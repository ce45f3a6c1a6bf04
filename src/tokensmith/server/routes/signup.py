"""The sign-up page (``core.self_service``): ``GET`` shows the form, ``POST`` checks the
operator's rules and the throttles (first transaction), hashes the password on the hashing pool
(no transaction held), then sends the link (second transaction). Every address gets the same
answer; the account is created when the link is followed (``routes/confirm.py``).

With an invitation (``/signup?invite=ts_iv_...``, the link an operator's invitation carries) the
same form has the invited address fixed; ``GET`` uses nothing, and the ``POST`` uses the
invitation and creates the account at once, its address verified. With ``signup=invite`` the page
without an invitation says that sign-up is by invitation only. Like every page, they are served
``no-store`` under ``no-referrer``: the link's secret is in their URL and form."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.password_rules import WeakPassword
from tokensmith.core.self_service import INVITATION_INVALID, INVITATION_ONLY, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.routes.self_service_page import SelfServicePage, back_to_sign_in
from tokensmith.server.runtime import Runtime


def offered(rt: Runtime, values: Mapping[str, str]) -> str | None:
    """The page exists for public sign-up, and for invitations (``signup=invite``, where the
    page without one says so)."""
    accounts = rt.server.policy.accounts
    if "invite" in values:
        is_open = accounts.invitations_open
    else:
        is_open = accounts.signup_open or accounts.invitations_open
    return None if is_open else "Sign-up is not offered here."


PAGE = SelfServicePage(
    template="signup.html",
    form="signup",
    forged="The form was not sent from this sign-up page. Reload the page and try again.",
    action=lambda s: s.signup_path,
    offered=offered,
)


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    *,
    email: str = "",
    name: str = "",
    invite: str = "",
    closed: bool = False,
    txn: str | None = None,
) -> Response:
    """The page; ``invite``: the form of that invitation (its ``email`` fixed); ``closed``:
    the answer without a form; ``txn``: the sign-in it was opened from, to link back to."""
    return PAGE.render(
        rt,
        browser,
        answer,
        min_length=rt.self_service.rules.min_length,
        email=email,
        person_name=name,
        invite=invite,
        closed=closed,
        **back_to_sign_in(rt, txn),
    )


async def signup_form(request: Request) -> Response:
    invite, txn = request.query_params.get("invite"), request.query_params.get("txn")
    async with PAGE.opened(request) as visit:
        if isinstance(visit, Response):
            return visit
        service = visit.rt.self_service
        view = await service.view_invitation(visit.stores, invite) if invite is not None else None
    rt, browser = visit.rt, visit.browser
    if view is None:
        if not rt.server.policy.accounts.signup_open:
            answer = FormAnswer(error=INVITATION_ONLY, status=403)
            return page(rt, browser, answer, closed=True, txn=txn)
        return page(rt, browser, txn=txn)
    if view.purpose is None or invite is None:
        return page(rt, browser, FormAnswer(error=INVITATION_INVALID, status=400), closed=True)
    return page(rt, browser, email=view.email, name=view.name, invite=invite)


async def signup_submit(request: Request) -> Response:
    async with PAGE.submitted(request, max_value_length=1024) as visit:
        if isinstance(visit, Response):
            return visit
        rt, browser, form = visit.rt, visit.browser, visit.values
        email, name = form.get("email", ""), form.get("name", "")
        invite, txn = form.get("invite"), form.get("txn")
        service = rt.self_service
        if invite is not None:
            start = await service.begin_invitation(
                visit.stores, invite, name=name, address=visit.address
            )
        else:
            start = await service.begin_signup(
                visit.stores, email=email, name=name, address=visit.address
            )
    if invite is not None:
        email = start.email
    if start.answer is not None:
        # an invitation that is not valid, or public sign-up refused by invite-only: no form
        closed = (
            start.answer.status == 400
            if invite is not None
            else not rt.server.policy.accounts.signup_open
        )
        return page(
            rt,
            browser,
            start.answer,
            email=email,
            name=name,
            invite=invite or "",
            closed=closed,
            txn=txn,
        )
    try:
        password_hash = await service.choose_password(
            form.get("password", ""), context=(start.email,)
        )
    except WeakPassword as exc:
        weak = FormAnswer(error=str(exc))
        return page(rt, browser, weak, email=email, name=name, invite=invite or "", txn=txn)
    async with rt.db.transaction() as stores:
        if invite is not None:
            answer = await service.accept_invitation(stores, start, password_hash)
        else:
            answer = await service.finish_signup(
                stores, start, password_hash, notify=rt.mailer.notify
            )
    return page(rt, browser, answer, closed=answer.error is not None, txn=txn)
