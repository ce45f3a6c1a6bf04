"""The authorization server as a FastAPI app: ``create_app(settings)``."""

from tokensmith.server.app import create_app

__all__ = ["create_app"]
