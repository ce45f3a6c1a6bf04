"""RP-Initiated Logout 1.0: ``GET /logout`` (``end_session_endpoint``) and ``POST /logout``.

- ``post_logout_redirect_uri`` must exactly match one registered for the client (named by the
  ``id_token_hint``'s audience or ``client_id``); otherwise an error page, never a redirect.
- With a valid ``id_token_hint`` for the signed-in user, the session ends at once. Without one,
  the user confirms on a page whose form carries a CSRF token (no logout CSRF).
- Logout deletes the session server-side and clears the cookie.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import audit, id_token
from tokensmith.core.audit import AuditEvent
from tokensmith.core.authorize import redirect_url
from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.core.models import Client
from tokensmith.core.params import parse_query
from tokensmith.core.ports import Stores
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


@dataclass(frozen=True, slots=True)
class LogoutTarget:
    client: Client | None
    redirect_uri: str | None
    state: str | None


async def _target(rt: Runtime, stores: Stores, params: dict[str, str]) -> LogoutTarget:
    client_id = params.get("client_id")
    redirect_uri = params.get("post_logout_redirect_uri")
    client = await stores.clients.get(client_id) if client_id else None
    if client_id and client is None:
        raise InvalidRequest("the client is not registered with this server")
    if redirect_uri is not None:
        if client is None:
            raise InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint")
        if redirect_uri not in client.post_logout_redirect_uris:
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
    return LogoutTarget(client, redirect_uri, params.get("state"))


def _hint_claims(rt: Runtime, hint: str) -> dict[str, object]:
    try:
        return id_token.verify_hint(rt.server.keys, hint, issuer=rt.server.issuer)
    except jwt.PyJWTError:
        raise InvalidRequest("id_token_hint is not an ID token issued by this server") from None


async def _end_session(rt: Runtime, stores: Stores, browser: Browser) -> None:
    if browser.session is not None:
        await stores.sessions.delete(browser.session.digest)
        # tokens of this session end with it, unless the user asked for offline_access
        await stores.grants.revoke_for_session(browser.session.digest, rt.server.now())
        rt.server.audit(AuditEvent(audit.LOGOUT, rt.server.now(), user_id=browser.session.user_id))
        browser.session = None
    browser.clear_session = True


def _done(rt: Runtime, target: LogoutTarget, *, status: int) -> Response:
    if target.redirect_uri is not None:
        location = redirect_url(target.redirect_uri, {"state": target.state})
        return RedirectResponse(location, status_code=status)
    return rt.pages.render("logged_out.html")


def _csrf(rt: Runtime, browser: Browser) -> str:
    return rt.cookies.csrf_token(browser, "logout")


async def logout(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            params = parse_query(request.scope["query_string"], max_value_length=8192)[0]
            hint = params.get("id_token_hint")
            claims = _hint_claims(rt, hint) if hint else None
            if claims is not None:
                aud = claims["aud"]
                hinted = (
                    aud if isinstance(aud, str) else str(aud[0]) if isinstance(aud, list) else ""
                )
                if params.setdefault("client_id", hinted) != hinted:
                    raise InvalidRequest("client_id does not match the id_token_hint")
            target = await _target(rt, stores, params)
        except OAuthError as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        session = browser.session
        if claims is not None and (session is None or claims["sub"] == session.user_id):
            await _end_session(rt, stores, browser)
            response = _done(rt, target, status=302)
        elif session is None:
            response = _done(rt, target, status=302)
        else:
            response = rt.pages.render(
                "logout.html",
                action=rt.settings.logout_path,
                csrf_token=_csrf(rt, browser),
                client_name=target.client.name if target.client else None,
                client_id=target.client.client_id if target.client else None,
                post_logout_redirect_uri=target.redirect_uri,
                state=target.state,
            )
    return rt.cookies.apply(response, browser)


async def logout_confirm(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=8192)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        try:
            if not rt.cookies.check_csrf(request, browser, "logout", form.get("csrf_token", "")):
                raise _Forbidden("the sign-out form was not sent from this site")
            target = await _target(rt, stores, form)
        except OAuthError as exc:
            return rt.cookies.apply(page_error(request, rt.pages, exc), browser)
        await _end_session(rt, stores, browser)
        response = _done(rt, target, status=303)
    return rt.cookies.apply(response, browser)


class _Forbidden(InvalidRequest):
    status_code = 403
