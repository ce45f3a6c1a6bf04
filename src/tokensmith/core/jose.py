"""base64url (RFC 7515 §2, RFC 4648 §5): the one encoder and decoder every part of tokensmith uses.

The server (keys, JWT access tokens, ``at_hash``, PKCE), the resource toolkit (JWS segments), the
client toolkit (sealed cookies) and the testing issuer all import it from here: the standard
library only, so the toolkits may depend on it without pulling in the server.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url of ``data`` (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes, *, lenient: bool = False) -> bytes:
    """Decode base64url; raises ``ValueError`` (``binascii.Error``) when it is not.

    Strict by default (RFC 7515 §2): the base64url alphabet only, canonical (no stray trailing
    bits), ``=`` padding tolerated only when exact. The same contract as PyJWT's
    ``PyJWS._decode_base64url_segment``, with a regular expression instead of a per-character
    loop. ``lenient=True`` is the forgiving decoder of values an operator typed (the
    key-encryption key): padding optional and characters outside the alphabet skipped, as
    :func:`base64.urlsafe_b64decode` does.
    """
    raw = data.encode("ascii") if isinstance(data, str) else data
    if lenient:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    stripped = raw.rstrip(b"=")
    padding = len(raw) - len(stripped)
    if (
        padding > 2
        or (padding and len(raw) % 4)
        or len(stripped) % 4 == 1
        or not _ALPHABET.fullmatch(stripped)
    ):
        raise binascii.Error("not base64url")
    decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise binascii.Error("not base64url: non-canonical trailing bits")
    return decoded
