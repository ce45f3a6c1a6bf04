"""The FastAPI side: routes, cookies, the error page, and dependencies for the app.

Routes (under ``config.route_prefix``, ``/auth`` by default):

* ``GET /auth/{provider}/login?next=/path`` - 302 to the provider, with the transaction cookie.
* ``GET /auth/{provider}/callback`` - 303 to the app (or frontend) with the session cookie; the
  transaction cookie is deleted *on this response* (success or error page alike).
* ``GET /auth/session`` - JSON for a frontend: whether signed in, and the CSRF token for logout.
* ``POST /auth/logout`` - CSRF-protected; ends the session server-side, clears the cookie.
* ``POST /auth/{provider}/backchannel-logout`` - OpenID Connect Back-Channel Logout receiver.

Nothing secret is ever put in a URL: the browser carries only an HttpOnly session cookie whose
value is a random id the server stores as a digest.
"""

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tokensmith.client.config import ClientConfig
from tokensmith.client.crypto import CookieKeyRing
from tokensmith.client.discovery import JWKSFactory, ProviderDirectory
from tokensmith.client.errors import (
    CSRFError,
    LoginError,
    ProviderUnavailable,
    ReloginRequired,
    TemporaryFailure,
    UnknownProvider,
)
from tokensmith.client.login import LoginFlow, link_by_provider_subject
from tokensmith.client.models import FindOrCreateUser
from tokensmith.client.pages import PAGE_HEADERS, ErrorPage, render_error_page
from tokensmith.client.sessions import ActiveSession, AppSessions
from tokensmith.client.storage import LoginStore
from tokensmith.client.upstream import ProviderAPI
from tokensmith.client.vault import UpstreamTokenVault

__all__ = ["ClientAuth", "create_auth_router"]

logger = logging.getLogger("tokensmith.client")

_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_MAX_FORM = 4096


class ClientAuth:
    """The client toolkit wired into FastAPI.

    ``http`` is the app's :class:`httpx.AsyncClient` (owned by the app's lifespan, which closes it);
    ``store`` implements :class:`~tokensmith.client.LoginStore`; ``find_or_create_user`` is the
    identity-linking hook (default: link by provider and subject only).

    ``error_page``: the app's own error page, a function that gets an :class:`ErrorPage` and
    returns the response (its ``status_code`` is the one to answer with); the toolkit still
    deletes its cookies on it and adds ``Cache-Control: no-store`` when it has none. By default
    a small page with the look of tokensmith's own pages.

    The parts, one concern each: ``providers`` (:class:`ProviderDirectory`), ``sessions``
    (:class:`AppSessions`), ``vault`` (:class:`UpstreamTokenVault`) and ``login``
    (:class:`LoginFlow`, which uses the other three).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        store: LoginStore,
        http: httpx.AsyncClient,
        find_or_create_user: FindOrCreateUser | None = None,
        clock: Callable[[], float] = time.time,
        jwks_factory: JWKSFactory | None = None,
        error_page: Callable[[ErrorPage], Response] | None = None,
    ) -> None:
        self.config = config
        self.error_page = error_page
        keys = CookieKeyRing(config.secret_key)
        self.providers = ProviderDirectory(
            config, http=http, clock=clock, jwks_factory=jwks_factory
        )
        self.sessions = AppSessions(config, store=store, keys=keys, clock=clock)
        self.vault = UpstreamTokenVault(
            store=store, keys=keys, providers=self.providers, http=http, clock=clock
        )
        self.login = LoginFlow(
            config,
            keys=keys,
            providers=self.providers,
            sessions=self.sessions,
            vault=self.vault,
            transactions=store,
            find_or_create_user=find_or_create_user or link_by_provider_subject(store),
            clock=clock,
        )
        self.router = self._build_router()

    # dependencies for the app -----------------------------------------------------------------
    async def optional_session(self, request: Request) -> ActiveSession | None:
        """FastAPI dependency: the signed-in session, or ``None``."""
        return await self.sessions.load(request.cookies.get(self.config.session_cookie_name))

    async def require_session(self, request: Request) -> ActiveSession:
        """FastAPI dependency: the signed-in session, or 401."""
        session = await self.optional_session(request)
        if session is None:
            raise HTTPException(status_code=401, detail="not signed in")
        return session

    def api(self, session: ActiveSession | str, provider: str | None = None) -> ProviderAPI:
        """Call the provider's API as this user (tokens refreshed as needed)."""
        if isinstance(session, ActiveSession):
            return ProviderAPI(
                self.vault, user_id=session.user_id, provider=provider or session.provider
            )
        if provider is None:
            raise ValueError("provider is required with a user id")
        return ProviderAPI(self.vault, user_id=session, provider=provider)

    # responses --------------------------------------------------------------------------------
    def error_response(self, exc: LoginError, *, clear: tuple[str, ...] = ()) -> Response:
        logger.warning("client login error %s: %s", type(exc).__name__, exc.detail)
        if isinstance(exc, ReloginRequired):
            retry = self.config.landing_url(self.config.post_login_path)
        else:
            retry = self.config.landing_url(self.config.post_logout_path)
        page = ErrorPage(
            status_code=exc.status_code,
            title=exc.title,
            message=exc.message,
            code=type(exc).__name__,
            retry_url=retry,
            retry_label="Back to the application",
            error=exc,
        )
        response: Response
        if self.error_page is not None:
            response = self.error_page(page)
            response.headers.setdefault("Cache-Control", "no-store")
        else:
            body = render_error_page(
                title=page.title,
                message=page.message,
                code=page.code,
                retry_url=page.retry_url,
                retry_label=page.retry_label,
            )
            response = HTMLResponse(body, status_code=page.status_code, headers=PAGE_HEADERS)
        for name in clear:
            self._delete_cookie(response, name)
        return response

    def _set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.config.secure,
            httponly=True,
            samesite="lax",
        )

    def _delete_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", secure=self.config.secure, httponly=True, samesite="lax"
        )

    def _same_origin(self, request: Request) -> bool:
        """``Origin`` (when the browser sends it) must be this app or its frontend."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        allowed = {self.config.base_url}
        if self.config.frontend_url:
            parts = urlsplit(self.config.frontend_url)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        return origin in allowed

    # routes -----------------------------------------------------------------------------------
    def _build_router(self) -> APIRouter:
        router = APIRouter(prefix=self.config.route_prefix, tags=["auth"])
        login_flow = self.login
        sessions = self.sessions
        config = self.config
        Session = Annotated[ActiveSession | None, Depends(self.optional_session)]

        @router.get("/session")
        async def session_info(session: Session) -> JSONResponse:
            if session is None:
                return JSONResponse({"authenticated": False}, headers=_NO_STORE)
            return JSONResponse(
                {
                    "authenticated": True,
                    "user_id": session.user_id,
                    "provider": session.provider,
                    "csrf_token": session.csrf_token,
                },
                headers=_NO_STORE,
            )

        @router.post("/logout")
        async def logout(request: Request, session: Session) -> Response:
            if session is None:
                response: Response = RedirectResponse(
                    config.landing_url(config.post_logout_path), status_code=303, headers=_NO_STORE
                )
                self._delete_cookie(response, config.session_cookie_name)
                return response
            token = request.headers.get("x-csrf-token")
            if token is None:
                body = await request.body()
                if len(body) <= _MAX_FORM:
                    form = dict(parse_qsl(body.decode("latin-1")))
                    token = form.get("csrf_token")
            if not self._same_origin(request) or not sessions.check_csrf(session, token):
                return self.error_response(CSRFError("logout without a valid CSRF token"))
            target = await login_flow.logout(session)
            response = RedirectResponse(target, status_code=303, headers=_NO_STORE)
            self._delete_cookie(response, config.session_cookie_name)
            return response

        @router.post("/{provider}/backchannel-logout")
        async def backchannel_logout(provider: str, request: Request) -> Response:
            body = await _read_capped(request, _MAX_LOGOUT_BODY)
            token = None
            if body is not None:
                token = dict(parse_qsl(body.decode("latin-1"))).get("logout_token")
            headers = {"Cache-Control": "no-store"}
            try:
                await login_flow.backchannel_logout(provider, token)
            except LoginError as exc:
                logger.warning("back-channel logout refused: %s", exc.detail)
                status = 404 if isinstance(exc, UnknownProvider) else 400
                if isinstance(exc, ProviderUnavailable):
                    status = 502
                return JSONResponse(
                    {"error": "invalid_request"}, status_code=status, headers=headers
                )
            return Response(status_code=200, headers=headers)

        @router.get("/{provider}/login")
        async def login(provider: str, request: Request) -> Response:
            try:
                start = await login_flow.start_login(
                    provider, return_to=request.query_params.get("next")
                )
            except LoginError as exc:
                return self.error_response(exc)
            except Exception:
                logger.exception("client login start failed")
                return self.error_response(TemporaryFailure("unexpected error"))
            response = RedirectResponse(start.url, status_code=302, headers=_NO_STORE)
            self._set_cookie(response, start.cookie_name, start.cookie_value, start.max_age)
            return response

        @router.get("/{provider}/callback")
        async def callback(provider: str, request: Request) -> Response:
            params = _single_valued(request)
            tx_cookie = login_flow.transaction_cookie_for(params.get("state") if params else None)
            clear = (tx_cookie,) if tx_cookie else ()
            if params is None:
                return self.error_response(
                    LoginError("duplicated parameters in the callback"), clear=clear
                )
            try:
                result = await login_flow.finish_login(
                    provider,
                    params,
                    request.cookies,
                    previous_session=request.cookies.get(config.session_cookie_name),
                )
            except LoginError as exc:
                return self.error_response(exc, clear=clear)
            except Exception:  # never a 500 page or a stack trace; the log keeps the traceback
                logger.exception("client login callback failed")
                return self.error_response(TemporaryFailure("unexpected error"), clear=clear)
            response = RedirectResponse(result.redirect_url, status_code=303, headers=_NO_STORE)
            for name in clear:
                self._delete_cookie(response, name)
            self._set_cookie(
                response,
                config.session_cookie_name,
                result.session_cookie,
                int(config.session_ttl),
            )
            return response

        return router


_MAX_LOGOUT_BODY = 32 * 1024


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is over ``limit`` bytes: a declared length is checked
    before reading, and reading stops at the cap (the endpoint is open to anyone)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _single_valued(request: Request) -> dict[str, str] | None:
    """The query as a dict; ``None`` when a parameter is repeated (RFC 6749 §3.1)."""
    items = request.query_params.multi_items()
    params: dict[str, str] = {}
    for key, value in items:
        if key in params:
            return None
        params[key] = value
    return params


def create_auth_router(
    config: ClientConfig,
    *,
    store: LoginStore,
    http: httpx.AsyncClient,
    find_or_create_user: FindOrCreateUser | None = None,
    **kwargs: Any,
) -> APIRouter:
    """Shortcut for ``ClientAuth(config, ...).router`` when the app needs no dependencies."""
    return ClientAuth(
        config, store=store, http=http, find_or_create_user=find_or_create_user, **kwargs
    ).router
