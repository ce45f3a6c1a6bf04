"""RP-Initiated Logout 1.0: ``GET /logout`` (``end_session_endpoint``) and ``POST /logout``;
the decisions are ``core.logout``'s. Without a usable ``id_token_hint`` the user confirms on a
page whose form carries a CSRF token (no logout CSRF)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import logout as logouts
from tokensmith.core.errors import OAuthError, SignOutRejected
from tokensmith.core.logout import LogoutOutcome
from tokensmith.core.params import parse_query
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def _render(rt: Runtime, browser: Browser, outcome: LogoutOutcome, *, status: int) -> Response:
    target = outcome.target
    if outcome.kind == "confirm":
        return rt.pages.render(
            "logout.html",
            action=rt.settings.logout_path,
            csrf_token=rt.cookies.csrf_token(browser, "logout"),
            client_name=target.client.name if target.client else None,
            client_id=target.client.client_id if target.client else None,
            post_logout_redirect_uri=target.redirect_uri,
            state=target.state,
        )
    if target.location is not None:
        return RedirectResponse(target.location, status_code=status)
    return rt.pages.render("logged_out.html")


async def logout(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            params = parse_query(request.scope["query_string"], max_value_length=8192)[0]
            outcome = await logouts.start(rt.server, stores, params, browser.session)
        except OAuthError as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        response = _render(rt, browser, outcome, status=302)
    return rt.cookies.apply(response, browser, outcome.session)


async def logout_confirm(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=8192)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            if not rt.cookies.check_csrf(request, browser, "logout", form.get("csrf_token", "")):
                raise SignOutRejected("the sign-out form was not sent from this site")
            outcome = await logouts.confirm(rt.server, stores, form, browser.session)
        except OAuthError as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        response = _render(rt, browser, outcome, status=303)
    return rt.cookies.apply(response, browser, outcome.session)
