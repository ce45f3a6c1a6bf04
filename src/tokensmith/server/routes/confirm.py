"""The page of a sign-up, verification or e-mail change link (``core.self_service``): ``GET``
shows what the link is for and a button, without using it (mail scanners fetch links); the
button's ``POST`` (CSRF-checked) uses it: the account is created, the address confirmed, or the
new address made the user's (only in a browser signed in as that user, with its second factor
if it has one)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import account
from tokensmith.core.errors import NotSignedIn
from tokensmith.core.models import Session
from tokensmith.core.ports import Stores
from tokensmith.core.self_service import ADDRESS_TAKEN, LINK_INVALID, AddressTaken, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.routes.self_service_page import SelfServicePage
from tokensmith.server.runtime import Runtime

PAGE = SelfServicePage(
    template="confirm.html",
    form="confirm",
    forged="The form was not sent from this page. Open the link from your message again.",
    action=lambda s: s.confirm_path,
    headers={"Cache-Control": "no-store"},
)
LINKS = ("signup", "verify_email", "change_email")
"""The purposes of the links this page takes (an invitation's is the sign-up page's)."""


async def _account_session(rt: Runtime, stores: Stores, browser: Browser) -> Session | None:
    """The browser's session if it may act on its account (as on the account page)."""
    try:
        return await account.fully_signed_in(rt.server.factors, stores, browser.session)
    except NotSignedIn:
        return None


async def confirm_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    async with PAGE.opened(request) as visit:
        if isinstance(visit, Response):  # pragma: no cover - the page is always offered
            return visit
        session = await _account_session(visit.rt, visit.stores, visit.browser)
        view = await visit.rt.self_service.view_link(visit.stores, token, session=session)
    rt, browser = visit.rt, visit.browser
    if view.purpose not in LINKS:
        answer = FormAnswer(error=LINK_INVALID, status=400)
        return PAGE.render(rt, browser, answer, purpose=None, email="", token="")
    if view.error:
        answer = FormAnswer(error=view.error, status=403)
        return PAGE.render(rt, browser, answer, purpose=None, email="", token="")
    return PAGE.render(rt, browser, purpose=view.purpose, email=view.email, token=token)


async def confirm_submit(request: Request) -> Response:
    async with PAGE.submitted(request, max_value_length=200) as visit:
        if isinstance(visit, Response):
            return visit
        session = await _account_session(visit.rt, visit.stores, visit.browser)
    rt = visit.rt
    try:
        # its own transaction: an address taken meanwhile rolls back all of it (the link too)
        async with rt.db.transaction() as stores:
            answer = await rt.self_service.confirm(
                stores, visit.values.get("token", ""), session=session, notify=rt.mailer.notify
            )
    except AddressTaken:
        answer = FormAnswer(error=ADDRESS_TAKEN, status=409)
    return PAGE.render(rt, visit.browser, answer, purpose=None, email="", token="")
