"""The authenticated caller of a protected resource, as established from a validated token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Principal", "TokenType"]

TokenType = Literal["jwt", "opaque"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, for which client, with which scopes.

    ``subject`` is the ``sub`` claim: a user id, or the client id itself for a client-credentials
    token (RFC 9068 §2.2). ``claims`` is a read-only view of every claim the token carried (or the
    introspection response, for opaque tokens).
    """

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    claims: Mapping[str, Any]
    token_type: TokenType
    issuer: str | None = None
    expires_at: float | None = None

    @property
    def is_client(self) -> bool:
        """True for a client-credentials token: the subject is the client itself."""
        return self.client_id is not None and self.subject == self.client_id

    def has_scopes(self, scopes: Iterable[str]) -> bool:
        """True when every scope in ``scopes`` was granted."""
        return self.scopes.issuperset(scopes)
