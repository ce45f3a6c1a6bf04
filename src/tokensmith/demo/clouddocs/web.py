"""CloudDocs web: a server-rendered FastAPI app that signs people in with tokensmith.

A confidential OAuth client. "Login with tokensmith" is OpenID Connect against the demo's
authorization server through ``tokensmith.client`` (state, PKCE, nonce, verified ID token, an
HttpOnly session cookie; the tokens stay on the server, sealed). The documents list and editor call
the CloudDocs API with *the user's* access token (``auth.api(session)``), which the toolkit
refreshes on expiry or on a 401. "Login with GitHub" appears when ``GITHUB_CLIENT_ID`` and
``GITHUB_CLIENT_SECRET`` are set; documents belong to tokensmith accounts, so a GitHub sign-in
shows the profile and asks for a tokensmith sign-in to open documents. Logout ends the app
session and then the tokensmith session (RP-initiated logout).

Pages: Jinja2 templates in ``templates/``, CSS in ``static/``; no inline script or style, no
external assets, a strict CSP. Every form post carries the session's CSRF token and must come
from this origin.

Only public APIs are used: ``tokensmith.client``.
"""

import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    ExternalIdentity,
    OIDCProvider,
    Provider,
    ProviderUnavailable,
    ReloginRequired,
    SqlLoginStore,
    create_all,
    github,
    link_by_provider_subject,
)

__all__ = ["CloudDocsWebConfig", "create_web"]

HERE = Path(__file__).parent
FAVICON = (HERE / "static" / "favicon.svg").read_bytes()
PROVIDER = "tokensmith"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'"
)
MAX_FORM = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudDocsWebConfig:
    """``issuer``/``client_id``/``client_secret``: the app's registration at tokensmith.
    ``base_url``: this app's origin. ``api_url``: the CloudDocs API (the access tokens'
    audience). ``secret_key``: 32+ random bytes for sessions and sealed tokens.
    ``account_url``: tokensmith's account page (passkeys, two-step verification, sessions),
    linked next to "Sign out" for people signed in with tokensmith."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    base_url: str
    api_url: str
    secret_key: bytes = field(repr=False)
    database_path: str | Path = "clouddocs-web.sqlite3"
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_base_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    account_url: str | None = None


profiles_metadata = MetaData()
profiles = Table(
    "clouddocs_web_profiles",
    profiles_metadata,
    Column("user_id", String(64), primary_key=True),
    Column("name", String(320), nullable=False),
)


class ApiUnavailable(Exception):
    """The CloudDocs API did not answer sensibly."""


def create_web(config: CloudDocsWebConfig, *, clock: Callable[[], float] = time.time) -> FastAPI:
    engine: AsyncEngine = create_async_engine(f"sqlite+aiosqlite:///{config.database_path}")
    store = SqlLoginStore(engine)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    providers: dict[str, Provider] = {
        PROVIDER: OIDCProvider(
            issuer=config.issuer,
            client_id=config.client_id,
            client_secret=config.client_secret,
            scopes=("openid", "profile", "email", "offline_access", "docs:read", "docs:write"),
            display_name="tokensmith",
            api_base_urls=(config.api_url,),
        )
    }
    if config.github_client_id and config.github_client_secret:
        providers["github"] = github(
            config.github_client_id,
            config.github_client_secret,
            base_url=config.github_base_url,
            api_url=config.github_api_url,
        )
    link = link_by_provider_subject(store)

    async def find_or_create_user(identity: ExternalIdentity) -> str:
        user_id = await link(identity)
        name = identity.name or identity.email or identity.unverified_email or identity.subject
        async with engine.begin() as conn:
            statement = sqlite_insert(profiles).values(user_id=user_id, name=name[:320])
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[profiles.c.user_id], set_={"name": statement.excluded.name}
                )
            )
        return user_id

    auth = ClientAuth(
        ClientConfig(
            secret_key=config.secret_key,
            base_url=config.base_url,
            providers=providers,
            post_logout_path="/signed-out",  # register {base_url}/signed-out at tokensmith
        ),
        store=store,
        http=http,
        find_or_create_user=find_or_create_user,
        clock=clock,
    )
    templates = Jinja2Templates(directory=HERE / "templates")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_all(engine)
        async with engine.begin() as conn:
            await conn.run_sync(profiles_metadata.create_all)
        try:
            yield
        finally:
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="CloudDocs", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(auth.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    OptionalSession = Annotated[ActiveSession | None, Depends(auth.optional_session)]

    async def display_name(session: ActiveSession) -> str:
        async with engine.connect() as conn:
            name = await conn.scalar(
                select(profiles.c.name).where(profiles.c.user_id == session.user_id)
            )
        return str(name) if name else "you"

    async def page(
        request: Request,
        name: str,
        session: ActiveSession | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.update(
            session=session,
            user_name=await display_name(session) if session else None,
            provider_name=providers[session.provider].display_name
            if session and session.provider in providers
            else None,
            providers=[(key, p.display_name) for key, p in providers.items()],
            account_url=config.account_url if session and session.provider == PROVIDER else None,
        )
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def message(
        request: Request,
        session: ActiveSession | None,
        *,
        title: str,
        text: str,
        status: int,
        action: tuple[str, str] = ("/", "Back to your documents"),
    ) -> HTMLResponse:
        return await page(
            request, "message.html", session, status=status, title=title, text=text, action=action
        )

    def login_again(path: str) -> RedirectResponse:
        return RedirectResponse(f"/auth/{PROVIDER}/login?next={quote(path, safe='/')}", 303)

    async def call_api(
        session: ActiveSession, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await auth.api(session).request(method, path, **kwargs)
        except (httpx.HTTPError, ProviderUnavailable) as exc:
            raise ApiUnavailable(repr(exc)) from exc
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise ApiUnavailable(f"API answered {response.status_code}")
        return response

    async def read_form(request: Request, session: ActiveSession) -> dict[str, str] | None:
        """The urlencoded form, or None when it is not from this site with the session's
        CSRF token."""
        origin = request.headers.get("origin")
        if origin is not None and origin != config.base_url:
            return None
        body = await request.body()
        if len(body) > MAX_FORM:
            return None
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        token = form.get("csrf_token", "")
        if not secrets.compare_digest(token.encode(), session.csrf_token.encode()):
            return None
        return form

    async def refused(request: Request, session: ActiveSession | None) -> HTMLResponse:
        return await message(
            request,
            session,
            title="This form has expired",
            text="The form was not sent from this page or your session changed. Nothing was "
            "saved. Go back, reload the page and try again.",
            status=403,
        )

    async def unavailable(request: Request, session: ActiveSession) -> HTMLResponse:
        return await message(
            request,
            session,
            title="Documents are unavailable right now",
            text="CloudDocs could not reach its documents service. Your documents are safe; "
            "try again in a moment.",
            status=502,
        )

    def check_document(form: dict[str, str]) -> tuple[dict[str, str], str | None]:
        title = form.get("title", "").strip()
        body = form.get("body", "")
        if not title:
            return {"title": title, "body": body}, "Give the document a title."
        if len(title) > 200:
            return {"title": title, "body": body}, "The title can be at most 200 characters."
        if len(body) > 100_000:
            return {"title": title, "body": body}, "The text can be at most 100,000 characters."
        return {"title": title, "body": body}, None

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, session: OptionalSession) -> Response:
        if session is None:
            return await page(request, "home.html", None)
        if session.provider != PROVIDER:
            return await page(request, "other_provider.html", session)
        try:
            response = await call_api(session, "GET", "/documents")
        except ReloginRequired:
            return login_again("/")
        except ApiUnavailable:
            return await unavailable(request, session)
        return await page(
            request,
            "documents.html",
            session,
            documents=response.json(),
            draft={"title": "", "body": ""},
            error=None,
        )

    @app.post("/documents", response_class=HTMLResponse)
    async def create_document(request: Request, session: OptionalSession) -> Response:
        if session is None or session.provider != PROVIDER:
            return RedirectResponse("/", 303)
        form = await read_form(request, session)
        if form is None:
            return await refused(request, session)
        draft, error = check_document(form)
        try:
            if error is None:
                response = await call_api(session, "POST", "/documents", json=draft)
                if response.status_code == 201:
                    return RedirectResponse(f"/documents/{response.json()['id']}?saved=1", 303)
                error = "The document could not be saved; check the title and text."
            listing = await call_api(session, "GET", "/documents")
        except ReloginRequired:
            return login_again("/")
        except ApiUnavailable:
            return await unavailable(request, session)
        return await page(
            request,
            "documents.html",
            session,
            status=422,
            documents=listing.json(),
            draft=draft,
            error=error,
        )

    @app.get("/documents/{document_id}", response_class=HTMLResponse)
    async def show_document(
        request: Request, document_id: str, session: OptionalSession
    ) -> Response:
        if session is None or session.provider != PROVIDER:
            return RedirectResponse("/", 303)
        try:
            response = await call_api(session, "GET", f"/documents/{quote(document_id, safe='')}")
        except ReloginRequired:
            return login_again(f"/documents/{document_id}")
        except ApiUnavailable:
            return await unavailable(request, session)
        if response.status_code != 200:
            return await message(
                request,
                session,
                title="Document not found",
                text="There is no such document among yours. It may have been deleted.",
                status=404,
            )
        return await page(
            request,
            "document.html",
            session,
            document=response.json(),
            saved=request.query_params.get("saved") == "1",
            error=None,
        )

    @app.post("/documents/{document_id}", response_class=HTMLResponse)
    async def update_document(
        request: Request, document_id: str, session: OptionalSession
    ) -> Response:
        if session is None or session.provider != PROVIDER:
            return RedirectResponse("/", 303)
        form = await read_form(request, session)
        if form is None:
            return await refused(request, session)
        draft, error = check_document(form)
        path = f"/documents/{quote(document_id, safe='')}"
        if error is not None:
            document = {"id": document_id, **draft}
            return await page(
                request, "document.html", session, status=422, document=document, error=error
            )
        try:
            response = await call_api(session, "PUT", path, json=draft)
        except ReloginRequired:
            return login_again(f"/documents/{document_id}")
        except ApiUnavailable:
            return await unavailable(request, session)
        if response.status_code == 404:
            return RedirectResponse(path, 303)
        return RedirectResponse(f"{path}?saved=1", 303)

    @app.post("/documents/{document_id}/delete", response_class=HTMLResponse)
    async def delete_document(
        request: Request, document_id: str, session: OptionalSession
    ) -> Response:
        if session is None or session.provider != PROVIDER:
            return RedirectResponse("/", 303)
        if await read_form(request, session) is None:
            return await refused(request, session)
        try:
            await call_api(session, "DELETE", f"/documents/{quote(document_id, safe='')}")
        except ReloginRequired:
            return login_again("/")
        except ApiUnavailable:
            return await unavailable(request, session)
        return RedirectResponse("/", 303)

    @app.get("/signed-out", response_class=HTMLResponse)
    async def signed_out(request: Request, session: OptionalSession) -> Response:
        if session is not None:
            return RedirectResponse("/", 303)
        return await page(request, "signed_out.html", None)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:  # pragma: no cover - manual entry point; `tokensmith demo` runs it for you
    import uvicorn

    config = CloudDocsWebConfig(
        issuer=os.environ.get("CLOUDDOCS_ISSUER", "http://127.0.0.1:8000"),
        client_id=os.environ["CLOUDDOCS_CLIENT_ID"],
        client_secret=os.environ["CLOUDDOCS_CLIENT_SECRET"],
        base_url=os.environ.get("CLOUDDOCS_WEB_URL", "http://127.0.0.1:8001"),
        api_url=os.environ.get("CLOUDDOCS_API_URL", "http://127.0.0.1:8002"),
        secret_key=bytes.fromhex(os.environ["CLOUDDOCS_SECRET_KEY_HEX"]),
        github_client_id=os.environ.get("GITHUB_CLIENT_ID"),
        github_client_secret=os.environ.get("GITHUB_CLIENT_SECRET"),
    )
    port = int(config.base_url.rsplit(":", 1)[1])
    uvicorn.run(create_web(config), host="127.0.0.1", port=port)


if __name__ == "__main__":  # pragma: no cover
    main()
