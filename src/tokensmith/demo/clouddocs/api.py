"""CloudDocs documents API: a resource server protected by ``tokensmith.resource``.

Users keep documents; every document has an owner (the token's ``sub``) and a user only ever sees
their own. Scopes: ``docs:read`` to list and read, ``docs:write`` to create, update and delete,
``docs:admin`` for the admin listing of every document (meant for a machine client using the
client-credentials grant, whose token has ``sub == client_id``).

Storage is the demo's own small SQLite database (SQLAlchemy async + aiosqlite, ``create_all`` at
start-up), not the authorization server's. CORS is open to the configured SPA origin only. Swagger
UI (``/docs``) signs in with the authorization-code flow and PKCE.

Only the public toolkit API is used: ``tokensmith.resource``.

Run it: ``CLOUDDOCS_ISSUER=http://127.0.0.1:8000 python -m tokensmith.demo.clouddocs.api``.
"""

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tokensmith.resource import (
    BearerRoute,
    CombinedValidator,
    IntrospectionValidator,
    Principal,
    ResourceServer,
    TokenValidator,
    Validator,
)

__all__ = ["SCOPES", "CloudDocsApiConfig", "create_api"]

SCOPES = {
    "docs:read": "Read your documents",
    "docs:write": "Create, change and delete your documents",
    "docs:admin": "List every user's documents (machine clients)",
}

FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


@dataclass(frozen=True, slots=True)
class CloudDocsApiConfig:
    """Configuration of the documents API.

    ``issuer``: the authorization server (discovered via RFC 8414). ``audience``: this API's
    identifier, the ``aud`` of its access tokens. ``database_path``: the SQLite file.
    ``spa_origin``: the one browser origin allowed by CORS (None: no CORS at all).
    ``swagger_client_id``: the public client Swagger UI signs in as. Give
    ``introspection_client_id``/``_secret`` to accept opaque tokens too (RFC 7662).
    """

    issuer: str
    audience: str = "https://clouddocs.example/api"
    database_path: str | Path = "clouddocs-api.sqlite3"
    spa_origin: str | None = "http://localhost:5173"
    swagger_client_id: str = "clouddocs-swagger"
    authorization_url: str | None = None
    token_url: str | None = None
    introspection_client_id: str | None = None
    introspection_client_secret: str | None = None


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=100_000)


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner: str
    title: str
    body: str
    created_at: datetime
    updated_at: datetime


def _validator(
    config: CloudDocsApiConfig, http: httpx.AsyncClient, clock: Callable[[], float]
) -> Validator:
    jwt_validator = TokenValidator(
        http=http, issuer=config.issuer, audience=config.audience, clock=clock
    )
    if config.introspection_client_id is None or config.introspection_client_secret is None:
        return jwt_validator
    return CombinedValidator(
        jwt=jwt_validator,
        opaque=IntrospectionValidator(
            http=http,
            issuer=config.issuer,
            audience=config.audience,
            client_id=config.introspection_client_id,
            client_secret=config.introspection_client_secret,
        ),
    )


HOME_CSP = "default-src 'none'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
HOME_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CloudDocs API</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
</head>
<body>
<h1>CloudDocs API</h1>
<p>The documents API of the CloudDocs demo: JSON for programs, protected by OAuth bearer tokens
from tokensmith (scopes <code>docs:read</code>, <code>docs:write</code>, <code>docs:admin</code>).
</p>
<ul>
<li><a href="/docs">Swagger UI</a>: try the API in the browser ("Authorize" signs in with PKCE)</li>
<li><a href="/openapi.json">OpenAPI document</a></li>
</ul>
</body>
</html>
"""


def install_offline_swagger_ui(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the files the ``fastapi-offline`` package ships (FastAPI's
    default page loads them from a CDN), with its OAuth2 redirect page for the PKCE sign-in."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=assets), name="docs-static")
    redirect_path = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="CloudDocs API - Swagger UI",
            oauth2_redirect_url=redirect_path,
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
            init_oauth=app.swagger_ui_init_oauth,
        )

    @app.get(redirect_path, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def create_api(
    config: CloudDocsApiConfig,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The CloudDocs documents API as a FastAPI app (its lifespan owns the DB engine).

    ``clock`` is the token validator's clock (tests move it to expire tokens)."""
    owns_http = http is None
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    issuer = config.issuer.rstrip("/")
    rs = ResourceServer(
        _validator(config, client, clock),
        realm="clouddocs",
        authorization_url=config.authorization_url or f"{issuer}/authorize",
        token_url=config.token_url or f"{issuer}/token",
        scopes=SCOPES,
    )
    Reader = Annotated[Principal, rs.require_scopes("docs:read")]
    Writer = Annotated[Principal, rs.require_scopes("docs:write")]
    Admin = Annotated[Principal, rs.require_scopes("docs:admin")]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{config.database_path}")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()
            if owns_http:
                await client.aclose()

    app = FastAPI(
        title="CloudDocs API",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: no CDN
        redoc_url=None,
        swagger_ui_init_oauth={
            "clientId": config.swagger_client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": "docs:read docs:write",
        },
    )
    app.router.route_class = BearerRoute  # the token checked by the route (resource-server.md)
    install_offline_swagger_ui(app)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    if config.spa_origin is not None:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[config.spa_origin],
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )

    async def session(request: Request) -> AsyncIterator[AsyncSession]:
        async with request.app.state.sessions() as db:
            yield db

    Session = Annotated[AsyncSession, Depends(session)]

    async def owned(db: AsyncSession, principal: Principal, document_id: str) -> Document:
        document = await db.get(Document, document_id)
        if document is None or document.owner != principal.subject:
            # someone else's document is "not found", not "forbidden": no existence oracle
            raise HTTPException(status.HTTP_404_NOT_FOUND, "document not found")
        return document

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        """People who open the API's address get a page, not a JSON 404."""
        return HTMLResponse(HOME_PAGE, headers={"Content-Security-Policy": HOME_CSP})

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/documents")
    async def list_documents(principal: Reader, db: Session) -> list[DocumentOut]:
        rows = await db.scalars(
            select(Document)
            .where(Document.owner == principal.subject)
            .order_by(Document.created_at, Document.id)
        )
        return [DocumentOut.model_validate(row) for row in rows]

    @app.post("/documents", status_code=status.HTTP_201_CREATED)
    async def create_document(document: DocumentIn, principal: Writer, db: Session) -> DocumentOut:
        now = datetime.now(UTC)
        row = Document(
            id=str(uuid.uuid4()),
            owner=principal.subject,
            title=document.title,
            body=document.body,
            created_at=now,
            updated_at=now,
        )
        db.add(row)
        await db.commit()
        return DocumentOut.model_validate(row)

    @app.get("/documents/{document_id}")
    async def read_document(document_id: str, principal: Reader, db: Session) -> DocumentOut:
        return DocumentOut.model_validate(await owned(db, principal, document_id))

    @app.put("/documents/{document_id}")
    async def update_document(
        document_id: str, document: DocumentIn, principal: Writer, db: Session
    ) -> DocumentOut:
        row = await owned(db, principal, document_id)
        row.title, row.body, row.updated_at = document.title, document.body, datetime.now(UTC)
        await db.commit()
        return DocumentOut.model_validate(row)

    @app.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_document(document_id: str, principal: Writer, db: Session) -> Response:
        await db.delete(await owned(db, principal, document_id))
        await db.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.get("/admin/documents")
    async def list_all_documents(principal: Admin, db: Session) -> list[DocumentOut]:
        rows = await db.scalars(select(Document).order_by(Document.created_at, Document.id))
        return [DocumentOut.model_validate(row) for row in rows]

    return app


def main() -> None:  # pragma: no cover - manual demo entry point
    import uvicorn

    config = CloudDocsApiConfig(
        issuer=os.environ.get("CLOUDDOCS_ISSUER", "http://127.0.0.1:8000"),
        audience=os.environ.get("CLOUDDOCS_AUDIENCE", "https://clouddocs.example/api"),
        database_path=os.environ.get("CLOUDDOCS_DB", "clouddocs-api.sqlite3"),
        spa_origin=os.environ.get("CLOUDDOCS_SPA_ORIGIN", "http://localhost:5173"),
    )
    uvicorn.run(create_api(config), host="127.0.0.1", port=int(os.environ.get("PORT", "8001")))


if __name__ == "__main__":  # pragma: no cover
    main()
