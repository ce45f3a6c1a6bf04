"""The FastAPI app factory of the authorization server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from tokensmith.core.accounts import Accounts
from tokensmith.core.clock import Clock, system_clock
from tokensmith.core.errors import HashingBusy, OAuthError, ServerError, TemporarilyUnavailable
from tokensmith.core.password_rules import BreachedPasswordChecker
from tokensmith.server import observability, schemas
from tokensmith.server.cors import CorsSettings, EndpointCors
from tokensmith.server.errors import json_error, page_error
from tokensmith.server.fastpath import AuthorizationServerApp
from tokensmith.server.observability import Metrics, Observability
from tokensmith.server.routes import (
    account,
    account_mfa,
    admin,
    authorize,
    confirm,
    consent,
    dev_outbox,
    forgot_password,
    introspect,
    login,
    logout,
    metadata,
    mfa,
    register,
    reset_password,
    revoke,
    signup,
    token,
    userinfo,
)
from tokensmith.server.runtime import Runtime
from tokensmith.server.schemas import DescribedRoute
from tokensmith.settings import Settings

STATIC = Path(__file__).parent / "static"
FAVICON = (STATIC / "favicon.svg").read_bytes()


async def favicon(request: Request) -> Response:
    """``/favicon.ico``: the SVG icon of the pages (browsers ask for this path on their own)."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    cors_origins: Iterable[str] | None = None,
    password_checker: BreachedPasswordChecker | None = None,
    accounts: Accounts | None = None,
) -> AuthorizationServerApp:
    """Build the authorization server. Resources (engine, keys) are opened by the lifespan.

    The app is a ``FastAPI`` (:class:`~tokensmith.server.fastpath.AuthorizationServerApp`):
    token, revocation, introspection, JWKS and metadata requests skip FastAPI's router and its
    layers, through the same middleware and exception handlers (``server/fastpath.py``). A
    middleware added with ``app.add_middleware`` wraps every request, those included, in the
    place FastAPI gives it: inside the 500 handler, and inside the server's request id,
    metrics and security headers, which wrap everything (every answer carries them).

    ``cors_origins``: browser origins allowed to call token, revocation and userinfo (default:
    ``TOKENSMITH_CORS_ORIGINS``, see :mod:`tokensmith.server.cors`).

    ``password_checker``: where new passwords (sign-up, reset) are looked up as breached or
    common, instead of the list shipped with tokensmith (``core.password_rules``).

    ``accounts``: the users signed in, when the application brings its own
    (``core.accounts.Accounts``; default ``TOKENSMITH_ACCOUNTS``, else tokensmith's table)."""
    settings = settings if settings is not None else Settings()
    cors_origins = tuple(CorsSettings().cors_origins if cors_origins is None else cors_origins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await Runtime.start(
            settings, clock, password_checker=password_checker, accounts=accounts
        )
        app.state.runtime = rt
        app.state.metrics.audit = rt.audit
        app.state.metrics.hashing = rt.server.passwords
        rt.start_tasks()
        rt.freeze_start_up()
        try:
            yield
        finally:
            await rt.close()

    app = AuthorizationServerApp(
        title="tokensmith authorization server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    s = settings

    def route(
        path: str, endpoint: schemas.Endpoint | schemas.AsgiEndpoint, **options: Any
    ) -> DescribedRoute:
        described = DescribedRoute(path, endpoint, **options)
        app.router.routes.append(described)
        return described

    # Plain Starlette routes, each carrying its own description (``server/schemas.py``): the
    # handlers take the raw request and parse it themselves, so FastAPI's per-request
    # machinery would do nothing but cost. The machine-to-machine endpoints come first: the
    # router tries the routes in order, and /token is the busiest. They are also the fast
    # routes (``server/fastpath.py``): served without FastAPI's application and router layers,
    # through the same middleware and exception handlers.
    d = schemas
    app.fast_routes = (
        route(s.token_path, token.token, methods=["POST"], asgi=True, **d.TOKEN),
        route(s.token_path, token.token_get, methods=["GET"], **d.TOKEN_GET),
        route(s.revoke_path, revoke.revoke, methods=["POST"], asgi=True, **d.REVOKE),
        route(
            s.introspect_path, introspect.introspect, methods=["POST"], asgi=True, **d.INTROSPECT
        ),
        route(
            "/.well-known/oauth-authorization-server",
            metadata.authorization_server_metadata,
            methods=["GET"],
            **d.OAUTH_METADATA,
        ),
        route(
            "/.well-known/openid-configuration",
            metadata.authorization_server_metadata,
            methods=["GET"],
            **d.OPENID_CONFIGURATION,
        ),
        route(s.jwks_path, metadata.jwks, methods=["GET"], **d.JWKS_GET),
    )
    if s.registration != "off":
        rule = "/register/{client_id}"
        route("/register", register.register, methods=["POST"], include_in_schema=False)
        route(rule, register.read_registration, methods=["GET"], include_in_schema=False)
        route(rule, register.update_registration, methods=["PUT"], include_in_schema=False)
        route(rule, register.delete_registration, methods=["DELETE"], include_in_schema=False)
    route(s.userinfo_path, userinfo.userinfo_endpoint, methods=["GET"], **d.USERINFO_GET)
    route(s.userinfo_path, userinfo.userinfo_endpoint, methods=["POST"], **d.USERINFO_POST)
    route(s.authorize_path, authorize.authorize, methods=["GET"], **d.AUTHORIZE_GET)
    route(s.authorize_path, authorize.authorize_post, methods=["POST"], **d.AUTHORIZE_POST)
    route(s.login_path, login.login_form, methods=["GET"], include_in_schema=False)
    route(s.login_path, login.login_submit, methods=["POST"], include_in_schema=False)
    route(s.mfa_path, mfa.mfa_form, methods=["GET"], include_in_schema=False)
    route(s.mfa_path, mfa.mfa_submit, methods=["POST"], include_in_schema=False)
    route(
        s.mfa_path + "/passkey-options",
        mfa.passkey_options,
        methods=["POST"],
        include_in_schema=False,
    )
    route(
        s.login_path + "/passkey/options",
        login.passkey_options,
        methods=["POST"],
        include_in_schema=False,
    )
    route(
        s.login_path + "/passkey", login.passkey_submit, methods=["POST"], include_in_schema=False
    )
    route(s.consent_path, consent.consent_form, methods=["GET"], include_in_schema=False)
    route(s.consent_path, consent.consent_submit, methods=["POST"], include_in_schema=False)
    route(s.account_path, account.account, methods=["GET"], include_in_schema=False)
    route(s.account_path, account.remove_app, methods=["POST"], include_in_schema=False)
    for suffix, endpoint in (
        ("/sessions/end", account.sign_out_everywhere),
        ("/password", account.change_password),
        ("/delete", account.delete_account),
        ("/email", account.change_email),
    ):
        route(s.account_path + suffix, endpoint, methods=["POST"], include_in_schema=False)
    route(
        s.account_path + "/verify-email",
        account.request_verification,
        methods=["POST"],
        include_in_schema=False,
    )
    mfa_forms = account_mfa.paths(s.account_path)
    for path, endpoint, method in (
        (mfa_forms["totp"], account_mfa.begin_totp, "POST"),
        (mfa_forms["totp"], account_mfa.totp_page, "GET"),
        (mfa_forms["confirm"], account_mfa.confirm_totp, "POST"),
        (mfa_forms["disable"], account_mfa.disable_totp, "POST"),
        (mfa_forms["recovery_codes"], account_mfa.regenerate_recovery_codes, "POST"),
        (mfa_forms["passkey_options"], account_mfa.passkey_options, "POST"),
        (mfa_forms["passkeys"], account_mfa.register_passkey, "POST"),
        (mfa_forms["passkey_remove"], account_mfa.remove_passkey, "POST"),
    ):
        route(path, endpoint, methods=[method], include_in_schema=False)
    route(s.logout_path, logout.logout, methods=["GET"], **d.LOGOUT_GET)
    route(s.logout_path, logout.logout_confirm, methods=["POST"], **d.LOGOUT_POST)
    # self-service accounts (core.self_service); each page answers 404 when switched off
    route(s.signup_path, signup.signup_form, methods=["GET"], include_in_schema=False)
    route(s.signup_path, signup.signup_submit, methods=["POST"], include_in_schema=False)
    route(s.confirm_path, confirm.confirm_page, methods=["GET"], include_in_schema=False)
    route(s.confirm_path, confirm.confirm_submit, methods=["POST"], include_in_schema=False)
    forgot = forgot_password
    route(s.forgot_password_path, forgot.forgot_form, methods=["GET"], include_in_schema=False)
    route(s.forgot_password_path, forgot.forgot_submit, methods=["POST"], include_in_schema=False)
    reset = reset_password
    route(s.reset_password_path, reset.reset_form, methods=["GET"], include_in_schema=False)
    route(s.reset_password_path, reset.reset_submit, methods=["POST"], include_in_schema=False)
    if settings.email_backend == "outbox":  # development only (server/mail.py)
        route(s.outbox_path, dev_outbox.outbox, methods=["GET"], include_in_schema=False)
    route("/healthz", observability.healthz, methods=["GET"], include_in_schema=False)
    route("/readyz", observability.readyz, methods=["GET"], include_in_schema=False)
    if settings.metrics_enabled:
        app.state.metrics_access = observability.MetricsAccess.from_settings(settings)
        route("/metrics", observability.metrics_endpoint, methods=["GET"], include_in_schema=False)
    route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
    admin.install(app)  # /admin/v1/...: the admin API
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    token_url = settings.issuer.rstrip("/") + s.token_path
    schemas.install(
        app,
        issuer=settings.issuer,
        extra_schemes={"adminToken": admin.security_scheme(token_url)},
    )
    metrics = Metrics(
        frozenset(r.path for r in app.routes if isinstance(r, (DescribedRoute, APIRoute)))
    )
    app.state.metrics = metrics

    async def oauth_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, OAuthError):  # registered for OAuthError only
            return await unexpected(request, exc)
        if isinstance(exc, HashingBusy):  # from any form that hashes a password
            return busy(request, exc)
        return json_error(request, exc)

    async def unavailable(request: Request, exc: Exception) -> Response:
        """A store is down: 503 with ``Retry-After``, never a stack trace; the request's
        transaction was rolled back."""
        error = TemporarilyUnavailable(
            "the service is temporarily unavailable; try again shortly",
            detail=f"{type(exc).__name__}: {exc}",
            headers={"Retry-After": "2"},
        )
        return busy(request, error)

    def busy(request: Request, error: TemporarilyUnavailable) -> Response:
        """A 503: a page on the browser's pages, else JSON."""
        rt: Runtime = request.app.state.runtime
        pages = (
            s.authorize_path,
            s.login_path,
            s.consent_path,
            s.logout_path,
            s.account_path,
            s.signup_path,
            s.confirm_path,
            s.forgot_password_path,
            s.reset_password_path,
        )
        if request.url.path in pages or request.url.path in (
            s.mfa_path,
            *account_mfa.paths(s.account_path).values(),
        ):
            return page_error(request, rt.pages, error)
        return json_error(request, error)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return json_error(request, ServerError("internal error", detail=repr(exc)))

    app.add_exception_handler(OAuthError, oauth_error)
    app.add_exception_handler(RedisError, unavailable)
    app.add_exception_handler(DBAPIError, unavailable)
    # No pooled connection freed up within the pool timeout: an overload, or new
    # connections hanging while the database is unreachable.
    app.add_exception_handler(PoolTimeout, unavailable)
    app.add_exception_handler(OSError, unavailable)
    app.add_exception_handler(Exception, unexpected)
    # Around everything, the 500 handler included: every answer (a 500, a CORS preflight, a
    # user middleware's own) carries a request id, is counted, and has the security headers
    # (one layer for the three: each layer costs a token request ~4 µs, issue 17).
    app.outer_middleware = (Middleware(Observability, metrics=metrics, https=settings.is_https),)
    if cors_origins:  # no origin allowed: no CORS at all, and no layer that would do nothing
        app.add_middleware(
            EndpointCors,
            origins=cors_origins,
            paths={
                s.token_path: ("POST",),
                s.revoke_path: ("POST",),
                s.userinfo_path: ("GET", "POST"),
            },
        )
    return app
