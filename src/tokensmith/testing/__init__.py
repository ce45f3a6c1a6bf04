"""Testing helpers for APIs built on tokensmith: a real local issuer and a pytest plugin.

The plugin (``tokensmith.testing.plugin``) is registered through the ``pytest11`` entry point and
offers the ``tokensmith_issuer`` fixture; see ``docs/testing.md``. The names below are imported
lazily: the plugin module lives in this package and must stay cheap to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .issuer import LocalIssuer
    from .keys import SigningKey
    from .server import ThreadedServer

__all__ = ["LocalIssuer", "SigningKey", "ThreadedServer"]

_MODULES = {"LocalIssuer": "issuer", "SigningKey": "keys", "ThreadedServer": "server"}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
