"""The login page: ``GET`` shows the form, ``POST`` checks the password.

A wrong password and an unknown user get the same message, status and (through the hasher's
dummy verification) the same time. A successful login creates a new session id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.models import Session
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

WRONG_CREDENTIALS = "The username or password is not correct."


async def _login_page(
    rt: Runtime,
    stores: Stores,
    browser: Browser,
    txn: str,
    client_id: str,
    *,
    username: str = "",
    error: str | None = None,
    status: int | None = None,
) -> Response:
    client = await stores.clients.get(client_id)
    return rt.pages.render(
        "login.html",
        status=status or (401 if error else 200),
        action=rt.settings.login_path,
        txn=txn,
        csrf_token=rt.cookies.csrf_token(browser, txn),
        client_name=client.name if client else client_id,
        username=username,
        error=error,
    )


async def login_form(request: Request) -> Response:
    rt = runtime(request)
    async with rt.db.transaction() as stores:
        browser = await rt.cookies.load(request, stores, rt.server.now())
        interaction = await load_interaction(rt, stores, browser, request.query_params.get("txn"))
        if interaction is None:
            response = expired_page(rt)
        else:
            response = await _login_page(
                rt,
                stores,
                browser,
                interaction.id,
                interaction.request.client_id,
                username=interaction.request.login_hint or "",
            )
    return rt.cookies.apply(response, browser)


async def login_submit(request: Request) -> Response:
    """Two short transactions around the password check (``core.login``): the first reserves
    the attempt on the throttling counters and is committed before argon2 runs, on the worker
    pool, with no transaction or connection held; the second concludes the login."""
    rt = runtime(request)
    posted = await read_posted_form(request, rt)
    if isinstance(posted, Response):
        return posted
    login = rt.server.password_login()
    async with rt.db.transaction() as stores:
        browser, form, interaction, refused = await read_post(request, rt, stores, posted)
        if refused is not None or interaction is None:
            assert refused is not None
            return rt.cookies.apply(refused, browser)
        username = form.get("username", "")[:320]
        address = request.client.host if request.client else "unknown"
        attempt = await login.reserve(username, stores, address=address)
        if attempt.retry_after:
            response = await _login_page(
                rt,
                stores,
                browser,
                interaction.id,
                interaction.request.client_id,
                username=username,
                error=f"Too many failed attempts. Wait {attempt.retry_after} seconds, then try "
                "again.",
                status=429,
            )
            response.headers["Retry-After"] = str(attempt.retry_after)
            return rt.cookies.apply(response, browser)
    check = await login.verify(attempt, form.get("password", ""))
    async with rt.db.transaction() as stores:
        result = await login.conclude(attempt, check, stores)
        # the transaction may have been finished meanwhile (the same form sent twice)
        interaction = await load_interaction(rt, stores, browser, interaction.id)
        if interaction is None:
            return rt.cookies.apply(expired_page(rt), browser)
        user = result.user
        if user is None:
            response = await _login_page(
                rt,
                stores,
                browser,
                interaction.id,
                interaction.request.client_id,
                username=username,
                error=WRONG_CREDENTIALS,
            )
            return rt.cookies.apply(response, browser)
        if browser.session is not None:
            await stores.sessions.delete(browser.session.digest)
        now = rt.server.now()
        value, session_digest = rt.cookies.new_session_value()
        session = Session(
            digest=session_digest,
            user_id=user.id,
            auth_time=now,
            expires_at=now + rt.settings.session_ttl,
        )
        await stores.sessions.create(session)
        browser.session = session
        browser.new_session_value = value
        response = await finish(request, rt, stores, browser, interaction)
    return rt.cookies.apply(response, browser)
