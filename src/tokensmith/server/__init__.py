"""The authorization server as a FastAPI app: ``create_app(settings)``.

``create_app`` is imported on first use: the command line imports modules of this package
(e.g. ``server.mail``) for commands that never build the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokensmith.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tokensmith.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
