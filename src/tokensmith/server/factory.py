"""``uvicorn --factory tokensmith.server.factory:app_from_env``: the app from the environment,
for multi-worker deployments where each worker builds its own app.

``--http tokensmith.server.factory:http_from_env`` gives such a run the HTTP protocol that
``tokensmith serve`` runs (:mod:`tokensmith.server.protocols`): the request-head limits of the
environment's settings (431, 408), and its own answers with the security headers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from tokensmith.server.app import create_app
from tokensmith.server.observability import configure_logging
from tokensmith.server.protocols import http_protocol
from tokensmith.settings import Settings


def app_from_env() -> FastAPI:
    return create_app(Settings())


def serve_worker_app() -> FastAPI:
    """What each process of ``tokensmith serve --workers N`` runs: the logging ``serve`` sets
    up (``log_format``, the request id on every line), which a worker process does not inherit
    (uvicorn starts it afresh), then the app from the environment."""
    settings = Settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings)


def http_from_env(**kwargs: Any) -> asyncio.Protocol:
    """uvicorn's ``--http``: called by uvicorn for each connection, with the keyword arguments
    it gives a protocol class."""
    return _protocol_from_env()(**kwargs)


@functools.cache
def _protocol_from_env() -> Callable[..., asyncio.Protocol]:
    # The settings are read once per process, at its first connection (not at import, and not
    # per connection); app_from_env reads the same environment when the process starts.
    return http_protocol(Settings())
