"""``GET|POST /authorize`` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core.authorize import RedirectError
from tokensmith.core.errors import OAuthError
from tokensmith.core.params import check_form_content_type
from tokensmith.core.server import AuthorizeOutcome
from tokensmith.server.errors import form_error, page_error, redirect_error
from tokensmith.server.http import read_body
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def outcome_response(rt: Runtime, outcome: AuthorizeOutcome, *, status: int) -> Response:
    """A redirect to the client, or to the login or consent page of the interaction."""
    if outcome.location is not None:
        return RedirectResponse(outcome.location, status_code=status)
    path = rt.settings.login_path if outcome.kind == "login" else rt.settings.consent_path
    query = urlencode({"txn": outcome.interaction_id})
    return RedirectResponse(f"{path}?{query}", status_code=status)


async def authorize(request: Request) -> Response:
    """``GET``: parameters in the query (RFC 6749 §4.1.1); redirects are 302."""
    return await _authorize(request, request.scope["query_string"], status=302)


async def authorize_post(request: Request) -> Response:
    """``POST`` with a form body (OpenID Connect Core §3.1.2.1); redirects are 303."""
    rt = runtime(request)
    try:
        check_form_content_type(request.headers.get("content-type"))
        body = await read_body(
            request, rt.settings.max_form_bytes, time_limit=rt.settings.form_read_timeout
        )
    except OAuthError as exc:
        return form_error(request, rt.pages, exc)
    return await _authorize(request, body, status=303)


async def _authorize(request: Request, raw: bytes, *, status: int) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            outcome = await rt.server.authorize(
                raw,
                stores,
                session=browser.session,
                browser_digest=browser.browser_digest,
            )
        except RedirectError as exc:
            response = redirect_error(request, exc, rt.server.issuer, status=status)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            response = outcome_response(rt, outcome, status=status)
    return rt.cookies.apply(response, browser)
