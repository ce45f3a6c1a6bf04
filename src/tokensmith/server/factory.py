"""``uvicorn --factory tokensmith.server.factory:app_from_env``: the app from the environment,
for multi-worker deployments where each worker builds its own app."""

from __future__ import annotations

from fastapi import FastAPI

from tokensmith.server.app import create_app
from tokensmith.settings import Settings


def app_from_env() -> FastAPI:
    return create_app(Settings())
