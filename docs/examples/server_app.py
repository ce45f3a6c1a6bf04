"""Embedding the authorization server in your own ASGI deployment.

Run it with ``uvicorn docs.examples.server_app:app`` (settings from ``TOKENSMITH_*``), or build
the app from explicit settings as ``build()`` does.
"""

from __future__ import annotations

from fastapi import FastAPI

from tokensmith.server import create_app
from tokensmith.settings import Settings


def build(database_url: str, issuer: str = "https://auth.example.com") -> FastAPI:
    settings = Settings(
        issuer=issuer,
        database_url=database_url,
        access_token_ttl=300,  # five-minute access tokens
        signing_alg="ES256",
    )
    return create_app(settings)
