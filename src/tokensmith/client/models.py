"""Values the client toolkit hands to the application and to its stores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExternalIdentity", "FindOrCreateUser", "SessionRecord", "UpstreamTokens"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalIdentity:
    """Who the provider says signed in.

    ``subject`` is the provider's stable id (GitHub's numeric user id, the OIDC ``sub``); ``email``
    is set only when the provider vouches for it (``email_verified``), so linking on it is safe;
    ``unverified_email`` is what the provider showed without vouching. Link accounts by
    ``(provider, subject)``, never by an unverified e-mail address.
    """

    provider: str
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    unverified_email: str | None = None
    raw_claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


FindOrCreateUser = Callable[[ExternalIdentity], Awaitable[str]]
"""The app hook: return the id of the app's user for this identity (create one if needed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A server-side app session; the store keys it by the digest of the cookie value."""

    user_id: str
    provider: str
    created_at: float
    expires_at: float
    id_token: str | None = field(default=None, repr=False)
    subject: str | None = None
    sid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamTokens:
    """Tokens the provider issued for a user (stored sealed with AES-GCM)."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str | None = None
