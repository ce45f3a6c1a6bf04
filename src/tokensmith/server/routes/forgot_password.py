"""The forgotten-password page (``core.self_service``): the same answer, status and store work
for every login typed, whether or not it names an account; the link goes out from the
background mailer, so no answer waits on the mail server. Opened from a sign-in (``txn``), it
links back to it."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.routes.self_service_page import SelfServicePage, back_to_sign_in
from tokensmith.server.runtime import Runtime


def offered(rt: Runtime, values: Mapping[str, str]) -> str | None:
    if rt.server.policy.accounts.reset_open:
        return None
    return "Password reset by e-mail is not offered here."


PAGE = SelfServicePage(
    template="forgot_password.html",
    form="forgot_password",
    forged="The form was not sent from this page. Reload the page and try again.",
    action=lambda s: s.forgot_password_path,
    offered=offered,
)


async def forgot_form(request: Request) -> Response:
    async with PAGE.opened(request) as visit:
        if isinstance(visit, Response):
            return visit
    back = back_to_sign_in(visit.rt, visit.values.get("txn"))
    return PAGE.render(visit.rt, visit.browser, login="", **back)


async def forgot_submit(request: Request) -> Response:
    async with PAGE.submitted(request, max_value_length=400) as visit:
        if isinstance(visit, Response):
            return visit
        rt, login = visit.rt, visit.values.get("login", "")
        answer = await rt.self_service.request_reset(
            visit.stores, login, address=visit.address, notify=rt.mailer.notify
        )
    back = back_to_sign_in(rt, visit.values.get("txn"))
    return PAGE.render(rt, visit.browser, answer, login=login if answer.error else "", **back)
