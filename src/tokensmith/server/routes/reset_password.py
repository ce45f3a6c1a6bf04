"""The page of a password-reset link (``core.self_service``): ``GET`` shows the form when the
link is valid (nothing is used); the ``POST`` (CSRF-checked, throttled per address) checks the new
password against the rules, hashes it on the hashing pool with no transaction held, then uses
the link and ends every session and grant of the user. Served ``no-store``; the pages' policy
is ``no-referrer``, so the link's secret leaks through no ``Referer``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.password_rules import WeakPassword
from tokensmith.core.self_service import LINK_INVALID, FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.routes.self_service_page import SelfServicePage
from tokensmith.server.runtime import Runtime

PAGE = SelfServicePage(
    template="reset_password.html",
    form="reset_password",
    forged="The form was not sent from this page. Open the link from your message again.",
    action=lambda s: s.reset_password_path,
)


def page(
    rt: Runtime,
    browser: Browser,
    answer: FormAnswer | None = None,
    *,
    token: str = "",
    email: str = "",
    invalid: bool = False,
) -> Response:
    return PAGE.render(
        rt,
        browser,
        answer,
        forgot_url=rt.settings.forgot_password_path,
        min_length=rt.self_service.rules.min_length,
        token=token,
        email=email,
        invalid=invalid,
    )


async def reset_form(request: Request) -> Response:
    token = request.query_params.get("token", "")
    async with PAGE.opened(request) as visit:
        if isinstance(visit, Response):  # pragma: no cover - the page is always offered
            return visit
        view = await visit.rt.self_service.view_link(visit.stores, token)
    if view.purpose != "reset_password":
        answer = FormAnswer(error=LINK_INVALID, status=400)
        return page(visit.rt, visit.browser, answer, invalid=True)
    return page(visit.rt, visit.browser, token=token, email=view.email)


async def reset_submit(request: Request) -> Response:
    async with PAGE.submitted(request, max_value_length=1024) as visit:
        if isinstance(visit, Response):
            return visit
        rt, browser, token = visit.rt, visit.browser, visit.values.get("token", "")
        start = await rt.self_service.begin_reset(visit.stores, token, address=visit.address)
    if start.answer is not None or start.user is None:
        answer = start.answer or FormAnswer(error=LINK_INVALID, status=400)
        return page(rt, browser, answer, invalid=answer.status == 400)
    user = start.user
    try:
        password_hash = await rt.self_service.choose_password(
            visit.values.get("password", ""), context=(user.username, user.email)
        )
    except WeakPassword as exc:
        return page(rt, browser, FormAnswer(error=str(exc)), token=token, email=user.email or "")
    async with rt.db.transaction() as stores:
        answer = await rt.self_service.finish_reset(
            stores, start, password_hash, notify=rt.mailer.notify
        )
    return page(rt, browser, answer, invalid=answer.status == 400)
