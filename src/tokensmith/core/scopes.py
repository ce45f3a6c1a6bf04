"""Scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of %x21 / %x23-5B / %x5D-7E."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tokensmith.core.errors import InvalidRequest, InvalidScope

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
MAX_SCOPES = 50
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Split a ``scope`` parameter into its tokens, in order and without repeats."""
    if value is None:
        return ()
    tokens = value.split(" ")
    if any(token == "" for token in tokens):
        raise InvalidScope("scope tokens are separated by single spaces")
    if len(tokens) > MAX_SCOPES:
        raise InvalidScope(f"at most {MAX_SCOPES} scopes may be requested")
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope holds a character that is not allowed")
    return tuple(dict.fromkeys(tokens))


def scope_claim(value: Any) -> frozenset[str] | None:
    """The scopes of a token's ``scope`` claim or an introspection answer's ``scope`` member
    (RFC 9068 §2.2.3, RFC 7662 §2.2): a space-separated string, read leniently since the issuer
    wrote it; an absent claim is no scope, anything but a string is malformed (``None``)."""
    if value is None:
        return frozenset()
    if not isinstance(value, str):
        return None
    return frozenset(value.split())


def is_scope_token(value: str) -> bool:
    return bool(_SCOPE_TOKEN.fullmatch(value))


def check_scope_token(value: str) -> str:
    if not is_scope_token(value):
        raise InvalidRequest(f"'{value}' is not a valid scope name")
    return value


def check_allowed(requested: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise ``invalid_scope`` naming what is not in ``allowed``."""
    missing = [s for s in requested if s not in set(allowed)]
    if missing:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(missing)}")


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(scopes)
