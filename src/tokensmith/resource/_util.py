"""Small shared helpers of the resource-server toolkit (private)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeGuard


def _cache_digest() -> Callable[[bytes], bytes]:
    """BLAKE2b-256, or SHA-256 where hashlib refuses BLAKE2b (a FIPS-mode Python raises
    ``ValueError``, one built without its own hashes ``TypeError`` for ``digest_size``) or has
    none.

    Both are collision-resistant (a cache hit must stand only for the token that was verified).
    BLAKE2b is Python's own C code: OpenSSL 3's ``hashlib.sha256`` spends most of its time on a
    400-byte token fetching the algorithm again at each call (~1 µs more a reused token inside a
    request, measured in docs/performance.md)."""
    try:
        blake2b = hashlib.blake2b  # absent where Python has no code for it
        blake2b(b"", digest_size=32)
    except (AttributeError, ValueError, TypeError):
        sha256 = hashlib.sha256
        return lambda data: sha256(data).digest()
    return lambda data: blake2b(data, digest_size=32).digest()


_digest = _cache_digest()


def token_digest(token: str) -> bytes:
    """A token's 256-bit digest (:func:`_cache_digest`): cache key, never the token itself."""
    return _digest(token.encode("utf-8", "surrogatepass"))


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
