"""The page of a sign-up or verification link (``core.self_service``): ``GET`` shows what the
link is for and a button, without using it (mail scanners fetch links); the button's ``POST``
(CSRF-checked) uses it: the account is created, or the address confirmed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.self_service import LINK_INVALID, FormAnswer
from tokensmith.server.routes.self_service_page import SelfServicePage

PAGE = SelfServicePage(
    template="confirm.html",
    form="confirm",
    forged="The form was not sent from this page. Open the link from your message again.",
    action=lambda s: s.confirm_path,
)


async def confirm_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    async with PAGE.opened(request) as visit:
        if isinstance(visit, Response):  # pragma: no cover - the page is always offered
            return visit
        view = await visit.rt.self_service.view_link(visit.stores, token)
    if view.purpose not in ("signup", "verify_email"):
        answer = FormAnswer(error=LINK_INVALID, status=400)
        return PAGE.render(visit.rt, visit.browser, answer, purpose=None, email="", token="")
    return PAGE.render(visit.rt, visit.browser, purpose=view.purpose, email=view.email, token=token)


async def confirm_submit(request: Request) -> Response:
    async with PAGE.submitted(request, max_value_length=200) as visit:
        if isinstance(visit, Response):
            return visit
        answer = await visit.rt.self_service.confirm(visit.stores, visit.values.get("token", ""))
    return PAGE.render(visit.rt, visit.browser, answer, purpose=None, email="", token="")
