"""``GET|POST /authorize`` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1): the query or form
in, ``core.authorize.authorize`` decides, the answer out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core import authorize as authz
from tokensmith.core.errors import OAuthError
from tokensmith.core.params import check_form_content_type
from tokensmith.server.errors import browser_error, page_error
from tokensmith.server.http import read_body
from tokensmith.server.routes.interaction import outcome_response
from tokensmith.server.state import runtime


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
        return page_error(request, rt.pages, exc)
    return await _authorize(request, body, status=303)


async def _authorize(request: Request, raw: bytes, *, status: int) -> Response:
    rt = runtime(request)
    # a metadata-document client is fetched first, with no database connection held
    async with (
        authz.documents_resolved(rt.server, raw, rt.db.transaction),
        rt.db.transaction() as stores,
    ):
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            outcome = await authz.authorize(rt.server, raw, stores, browser=browser)
        except OAuthError as exc:
            response = browser_error(request, rt.pages, exc, issuer=rt.server.issuer, status=status)
        else:
            response = outcome_response(request, rt, outcome, status=status)
    return rt.cookies.apply(response, browser)
