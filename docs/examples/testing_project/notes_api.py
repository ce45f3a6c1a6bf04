"""A notes API, configured from the environment when this module is imported."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import FastAPI

from tokensmith.resource import Principal, ResourceServer, TokenValidator

ISSUER = os.environ.get("NOTES_ISSUER", "https://auth.example.com")
AUDIENCE = os.environ.get("NOTES_AUDIENCE", "https://notes.example.com")

http = httpx.AsyncClient(timeout=5.0)  # closed by the lifespan
rs = ResourceServer(TokenValidator(http=http, issuer=ISSUER, audience=AUDIENCE), realm="notes")
NotesReader = Annotated[Principal, rs.require_scopes("notes:read")]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await http.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/notes")
async def list_notes(principal: NotesReader) -> dict[str, str]:
    return {"owner": principal.subject}
