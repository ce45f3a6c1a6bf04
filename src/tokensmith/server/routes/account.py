"""``/account``: the signed-in user sees which applications they consented to, and removes one
(OAuth 2.1 §7.9 consent phishing: users must be able to see and withdraw what they granted).

Removing an application deletes its consents and revokes every grant the user gave it, so its
refresh and recorded access tokens stop working at once. The form carries a CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent
from tokensmith.core.ports import Stores
from tokensmith.server.browser import Browser
from tokensmith.server.routes.interaction import read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    name: str
    scopes: str
    apis: tuple[tuple[str, str], ...] = ()
    """(the API's name, or '' for sign-in only; the scopes granted for it) per API."""


def _not_signed_in(rt: Runtime) -> Response:
    return rt.pages.error(
        title="You are not signed in",
        message="This page lists the applications connected to your account once you are "
        "signed in.",
        advice="Sign in through one of your applications, then come back to this page.",
        status=401,
        code="login_required",
    )


async def _page(rt: Runtime, stores: Stores, browser: Browser, user_id: str) -> Response:
    user = await stores.users.get(user_id)
    apps = []
    for client_id, per_api in (await stores.consents.list_for_user(user_id)).items():
        client = await stores.clients.get(client_id)
        if client is None:
            continue
        apis = []
        for identifier, scopes in per_api.items():
            api = await stores.apis.get(identifier) if identifier else None
            label = api.name if api else identifier
            apis.append((label, " ".join(sorted(scopes))))
        everything = sorted({s for scopes in per_api.values() for s in scopes})
        apps.append(ConnectedApp(client_id, client.name, " ".join(everything), tuple(apis)))
    return rt.pages.render(
        "account.html",
        action=rt.settings.account_path,
        csrf_token=rt.cookies.csrf_token(browser, "account"),
        username=user.username if user else "",
        apps=apps,
    )


async def account(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        if browser.session is None:
            response = _not_signed_in(rt)
        else:
            response = await _page(rt, stores, browser, browser.session.user_id)
    return rt.cookies.apply(response, browser)


async def remove_app(request: Request) -> Response:
    rt = runtime(request)
    form = await read_posted_form(request, rt, max_value_length=200)
    if isinstance(form, Response):
        return form
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        if browser.session is None:
            return rt.cookies.apply(_not_signed_in(rt), browser)
        if not rt.cookies.check_csrf(request, browser, "account", form.get("csrf_token", "")):
            response = rt.pages.error(
                title="The form could not be accepted",
                message="The form was not sent from your account page.",
                advice="Reload the page and try again.",
                status=403,
                code="csrf",
            )
            return rt.cookies.apply(response, browser)
        client_id = form.get("client_id", "")
        user_id = browser.session.user_id
        now = rt.server.now()
        if await stores.consents.withdraw(user_id, client_id):
            await stores.grants.revoke_for_client(user_id, client_id, now)
            rt.server.audit(
                AuditEvent(audit.CONSENT_WITHDRAWN, now, client_id=client_id, user_id=user_id)
            )
        redirect = RedirectResponse(rt.settings.account_path, status_code=303)
    return rt.cookies.apply(redirect, browser)
