"""The consent page (``core.interaction``): the client's name, the API it asks to use (its
registered name, then its identifier), each requested scope with what it allows, Allow and Deny.

Deny sends ``access_denied`` to the client (RFC 6749 §4.1.2.1). Allow remembers the consent per
user, client, API and scope: consenting to ``docs:read`` of one API is no consent to a scope of
the same name of another API. The fine print says truly how the access ends: at sign-out, unless
``offline_access`` is granted, which outlives the session (until removed on the account page).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import interaction
from tokensmith.core.errors import OAuthError
from tokensmith.core.interaction import AuthorizeOutcome, ConsentForm
from tokensmith.server.browser import Browser
from tokensmith.server.errors import browser_error
from tokensmith.server.routes.interaction import check_form, outcome_response, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def _render(
    request: Request,
    rt: Runtime,
    browser: Browser,
    answer: ConsentForm | AuthorizeOutcome,
    *,
    status: int,
) -> Response:
    if isinstance(answer, AuthorizeOutcome):
        return outcome_response(request, rt, answer, status=status)
    return rt.pages.render(
        "consent.html",
        action=rt.settings.consent_path,
        txn=answer.txn,
        csrf_token=rt.cookies.csrf_token(browser, answer.txn),
        client_name=answer.client_name,
        username=answer.username,
        scopes=list(answer.scopes),
        api_name=answer.api_name,
        api_identifier=answer.api_identifier,
        offline=answer.offline,
        account_path=rt.settings.account_path,
        redirect_host=answer.redirect_host,
        client_origin=answer.client_origin,
        client_domain=answer.client_domain,
    )


async def consent_form(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            answer = await interaction.consent_page(
                rt.server, stores, browser, request.query_params.get("txn")
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=302)
        else:
            response = _render(request, rt, browser, answer, status=302)
    return rt.cookies.apply(response, browser)


async def consent_submit(request: Request) -> Response:
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            txn = check_form(request, rt, browser, posted)
            answer = await interaction.decide_consent(
                rt.server, stores, browser, txn, posted.get("decision")
            )
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=303)
        else:
            response = _render(request, rt, browser, answer, status=303)
    return rt.cookies.apply(response, browser)
