"""The consent page: the client's name, the API it asks to use (its registered name, then its
identifier), each requested scope with what it allows, Allow and Deny.

Deny sends ``access_denied`` to the client (RFC 6749 §4.1.2.1). Allow remembers the consent per
user, client, API and scope: consenting to ``docs:read`` of one API is no consent to a scope of
the same name of another API. The fine print says truly how the access ends: at sign-out, unless
``offline_access`` is granted, which outlives the session (until removed on the account page).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent
from tokensmith.core.models import Api, AuthorizationRequest
from tokensmith.core.ports import Stores
from tokensmith.server.browser import Browser
from tokensmith.server.routes.interaction import (
    expired_page,
    finish,
    load_interaction,
    read_post,
    read_posted_form,
)
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime

STANDARD_SCOPES = {
    "openid": "Confirm who you are (your account identifier).",
    "profile": "See your name and username.",
    "email": "See your email address.",
    "offline_access": "Keep access while you are away, also after you sign out.",
}


async def describe(
    stores: Stores, request: AuthorizationRequest, api: Api | None = None
) -> list[tuple[str, str]]:
    if api is None and request.audience:
        api = await stores.apis.get(request.audience)
    descriptions = dict(STANDARD_SCOPES)
    if api is not None:
        descriptions.update(api.descriptions)
    return [(s, descriptions.get(s, f"Use the '{s}' permission.")) for s in request.scopes]


async def _consent_page(
    rt: Runtime, stores: Stores, browser: Browser, request: AuthorizationRequest, txn: str
) -> Response:
    client = await stores.clients.get(request.client_id)
    user = await stores.users.get(browser.session.user_id) if browser.session else None
    api = await stores.apis.get(request.audience) if request.audience else None
    return rt.pages.render(
        "consent.html",
        action=rt.settings.consent_path,
        txn=txn,
        csrf_token=rt.cookies.csrf_token(browser, txn),
        client_name=client.name if client else request.client_id,
        username=user.username if user else "",
        scopes=await describe(stores, request, api),
        api_name=(api.name if api else request.audience) or None,
        api_identifier=request.audience,
        offline="offline_access" in request.scopes,
        account_path=rt.settings.account_path,
        redirect_host=urlsplit(request.redirect_uri).netloc or request.redirect_uri,
    )


async def consent_form(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        txn = request.query_params.get("txn")
        interaction = await load_interaction(rt, stores, browser, txn)
        if interaction is None:
            response = expired_page(rt)
        elif browser.session is None:
            query = urlencode({"txn": interaction.id})
            response = RedirectResponse(f"{rt.settings.login_path}?{query}", status_code=302)
        else:
            response = await _consent_page(rt, stores, browser, interaction.request, interaction.id)
    return rt.cookies.apply(response, browser)


async def consent_submit(request: Request) -> Response:
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    async with rt.db.transaction() as stores:
        browser, form, interaction, refused = await read_post(request, rt, stores, posted)
        if refused is not None or interaction is None:
            assert refused is not None
            return rt.cookies.apply(refused, browser)
        if browser.session is None:
            query = urlencode({"txn": interaction.id})
            response: Response = RedirectResponse(
                f"{rt.settings.login_path}?{query}", status_code=303
            )
        elif form.get("decision") == "allow":
            req = interaction.request
            await stores.consents.grant(
                browser.session.user_id, req.client_id, req.audience, req.scopes, rt.server.now()
            )
            rt.server.audit(
                AuditEvent(
                    audit.CONSENT_GRANTED,
                    rt.server.now(),
                    client_id=req.client_id,
                    user_id=browser.session.user_id,
                    detail={"scope": " ".join(req.scopes), "api": req.audience},
                )
            )
            response = await finish(request, rt, stores, browser, interaction, consent_given=True)
        elif form.get("decision") == "deny":
            await stores.interactions.delete(interaction.id)
            rt.server.audit(
                AuditEvent(
                    audit.CONSENT_DENIED,
                    rt.server.now(),
                    client_id=interaction.request.client_id,
                    user_id=browser.session.user_id,
                )
            )
            response = RedirectResponse(
                rt.server.denied_location(interaction.request), status_code=303
            )
        else:
            response = await _consent_page(rt, stores, browser, interaction.request, interaction.id)
    return rt.cookies.apply(response, browser)
