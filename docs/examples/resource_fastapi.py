"""Protect FastAPI routes with tokensmith.resource (docs/resource-server.md)."""

from typing import Annotated

import httpx
from fastapi import FastAPI

from tokensmith.resource import BearerRoute, Principal, ResourceServer, TokenValidator


def create_app(issuer: str, audience: str, http: httpx.AsyncClient) -> FastAPI:
    validator = TokenValidator(http=http, issuer=issuer, audience=audience)
    rs = ResourceServer(
        validator,
        realm="notes",
        authorization_url=f"{issuer}/authorize",
        token_url=f"{issuer}/token",
        scopes={"notes:read": "Read notes", "notes:write": "Write notes"},
    )
    NotesReader = Annotated[Principal, rs.require_scopes("notes:read")]
    NotesWriter = Annotated[Principal, rs.require_scopes("notes:read", "notes:write")]

    app = FastAPI(
        # Swagger UI's "Authorize" button: authorization code + PKCE, as a public client
        swagger_ui_init_oauth={
            "clientId": "notes-swagger",
            "usePkceWithAuthorizationCodeGrant": True,
        },
    )
    app.router.route_class = BearerRoute  # the token checked by the route itself: faster

    @app.get("/notes")
    async def list_notes(principal: NotesReader) -> dict[str, object]:
        return {"owner": principal.subject, "scopes": sorted(principal.scopes)}

    @app.post("/notes")
    async def add_note(principal: NotesWriter) -> dict[str, str]:
        return {"created_by": principal.subject}

    return app
