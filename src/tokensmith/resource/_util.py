"""Small shared helpers of the resource-server toolkit (private)."""

from __future__ import annotations

import hashlib
from typing import Any, TypeGuard


def token_digest(token: str) -> bytes:
    """The SHA-256 of a token: cache key, never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def token_fingerprint(token: str) -> str:
    """A short, non-reversible label of a token for logs (BCP-32: never log the token)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def is_number(value: Any) -> TypeGuard[int | float]:
    """JSON numbers only: ``True``/``False`` are ints in Python but not NumericDate values."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def max_age(cache_control: str | None) -> float | None:
    """The ``max-age`` of a ``Cache-Control`` header; 0 for ``no-store``/``no-cache``."""
    if not cache_control:
        return None
    result: float | None = None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                result = float(int(value.strip().strip('"')))
            except ValueError:
                return None
    return result
