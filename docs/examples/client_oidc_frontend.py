"""A backend for a separate frontend, signing in with Google or any OpenID Connect provider
(docs/client.md, "Separate frontend" and "Linking accounts").

After login the browser goes to ``frontend_url`` - with nothing secret in the URL. The frontend
then calls this backend with the HttpOnly session cookie (``credentials: "include"``); it reads
``GET /auth/session`` for the CSRF token it needs to ``POST /auth/logout``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    ExternalIdentity,
    OIDCProvider,
    SqlLoginStore,
    create_all,
    google,
    oidc,
)


def create_app(
    *,
    secret_key: bytes,
    base_url: str,
    frontend_url: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    database_url: str,
    google_client: tuple[str, str] | None = None,
) -> FastAPI:
    engine = create_async_engine(database_url)
    store = SqlLoginStore(engine)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    providers: dict[str, OIDCProvider] = {
        # any OpenID Connect provider by issuer URL - a tokensmith server, Keycloak, Entra ID...
        "corp": oidc(issuer, client_id, client_secret, display_name="Corporate login"),
    }
    if google_client is not None:
        providers["google"] = google(*google_client)

    async def find_or_create_user(identity: ExternalIdentity) -> str:
        """The app's hook: a known (provider, subject) is that user; otherwise a new user.

        ``identity.email`` is only set when the provider vouched for it (``email_verified``); an
        app that wants to attach a new identity to an existing account should do it while that
        account is signed in, never because an unverified address matches.
        """
        user_id = await store.find_user_by_identity(identity.provider, identity.subject)
        if user_id is None:
            user_id = await store.create_user(email=identity.email, name=identity.name)
        await store.link_identity(user_id, identity)
        return user_id

    auth = ClientAuth(
        ClientConfig(
            secret_key=secret_key,
            base_url=base_url,
            frontend_url=frontend_url,
            post_login_path="/welcome",
            providers=providers,
        ),
        store=store,
        http=http,
        find_or_create_user=find_or_create_user,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_all(engine)
        yield
        await http.aclose()
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(auth.router)

    @app.get("/api/me")
    async def me(
        session: Annotated[ActiveSession, Depends(auth.require_session)],
    ) -> dict[str, str]:
        return {"user_id": session.user_id, "provider": session.provider}

    return app
