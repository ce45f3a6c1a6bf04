"""Login with GitHub in a server-rendered FastAPI app (docs/client.md, "Quick start").

Run it with ``uvicorn docs.examples.client_github:app`` after setting the environment variables
read in :func:`settings_from_env`.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.ext.asyncio import create_async_engine

from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    ReloginRequired,
    SqlLoginStore,
    create_all,
    github,
)


@dataclass(frozen=True)
class Settings:
    secret_key: bytes = field(repr=False)  # 32+ random bytes from your secret store
    base_url: str  # the app's public origin, e.g. https://app.example
    github_client_id: str
    github_client_secret: str = field(repr=False)
    database_url: str = "sqlite+aiosqlite:///./app.db"
    # GitHub Enterprise Server: https://ghe.example and https://ghe.example/api/v3
    github_base_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"


def settings_from_env() -> Settings:
    return Settings(
        secret_key=bytes.fromhex(os.environ["APP_SECRET_KEY_HEX"]),
        base_url=os.environ["APP_BASE_URL"],
        github_client_id=os.environ["GITHUB_CLIENT_ID"],
        github_client_secret=os.environ["GITHUB_CLIENT_SECRET"],
    )


def create_app(settings: Settings) -> FastAPI:
    engine = create_async_engine(settings.database_url)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    auth = ClientAuth(
        ClientConfig(
            secret_key=settings.secret_key,
            base_url=settings.base_url,
            providers={
                "github": github(
                    settings.github_client_id,
                    settings.github_client_secret,
                    base_url=settings.github_base_url,
                    api_url=settings.github_api_url,
                )
            },
        ),
        store=SqlLoginStore(engine),
        http=http,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_all(engine)  # or copy the ts_client_* tables into your migrations
        yield
        await http.aclose()
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(auth.router)  # /auth/github/login, /auth/github/callback, /auth/logout
    CurrentSession = Annotated[ActiveSession | None, Depends(auth.optional_session)]
    RequiredSession = Annotated[ActiveSession, Depends(auth.require_session)]

    @app.get("/", response_class=HTMLResponse)
    async def home(session: CurrentSession) -> str:
        if session is None:
            return '<a href="/auth/github/login?next=/">Login with GitHub</a>'
        # logout is a POST carrying the session's CSRF token
        return (
            f"<p>Signed in as user {escape(session.user_id)}</p>"
            '<form method="post" action="/auth/logout">'
            f'<input type="hidden" name="csrf_token" value="{escape(session.csrf_token)}">'
            "<button>Log out</button></form>"
        )

    @app.get("/api/github-profile")
    async def github_profile(session: RequiredSession) -> JSONResponse:
        try:
            response = await auth.api(session).get("/user")  # the user's token, refreshed if needed
        except ReloginRequired:
            return JSONResponse({"login_url": "/auth/github/login"}, status_code=401)
        return JSONResponse({"login": response.json()["login"]})

    return app


if os.environ.get("APP_BASE_URL"):
    app = create_app(settings_from_env())
