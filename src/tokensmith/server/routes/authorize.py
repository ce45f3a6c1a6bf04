"""``GET /authorize`` (RFC 6749 §4.1.1)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core.authorize import RedirectError
from tokensmith.core.errors import OAuthError
from tokensmith.core.server import AuthorizeOutcome
from tokensmith.server.errors import page_error, redirect_error
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


def outcome_response(rt: Runtime, outcome: AuthorizeOutcome, *, status: int) -> Response:
    """A redirect to the client, or to the login or consent page of the interaction."""
    if outcome.kind == "redirect":
        assert outcome.location is not None
        return RedirectResponse(outcome.location, status_code=status)
    path = rt.settings.login_path if outcome.kind == "login" else rt.settings.consent_path
    query = urlencode({"txn": outcome.interaction_id})
    return RedirectResponse(f"{path}?{query}", status_code=status)


async def authorize(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            outcome = await rt.server.authorize(
                request.scope["query_string"],
                stores,
                session=browser.session,
                browser_digest=browser.browser_digest,
            )
        except RedirectError as exc:
            response = redirect_error(request, exc, rt.server.issuer, status=302)
        except OAuthError as exc:
            response = page_error(request, rt.pages, exc)
        else:
            response = outcome_response(rt, outcome, status=302)
    return rt.cookies.apply(response, browser)
