"""Storage Protocols of the client toolkit, one per concern.

The stores never see a secret in clear: session ids and transaction ids arrive as HMAC digests,
upstream tokens as AES-GCM ciphertext. :mod:`tokensmith.client.sqlalchemy_store` implements all of
them on SQLAlchemy (SQLite, PostgreSQL).
"""

from __future__ import annotations

from typing import Protocol

from tokensmith.client.models import ExternalIdentity, SessionRecord

__all__ = [
    "AppSessionStore",
    "ClientStore",
    "IdentityStore",
    "LoginStore",
    "SessionStore",
    "TransactionStore",
    "UpstreamTokenStore",
]


class IdentityStore(Protocol):
    """App users and the external identities linked to them."""

    async def find_user_by_identity(self, provider: str, subject: str) -> str | None: ...

    async def create_user(self, *, email: str | None, name: str | None) -> str: ...

    async def link_identity(self, user_id: str, identity: ExternalIdentity) -> None:
        """Insert or update the (provider, subject) -> user link and its latest claims."""
        ...


class AppSessionStore(Protocol):
    """The app's own server-side sessions (not the authorization server's browser sessions)."""

    async def create_session(self, digest: str, record: SessionRecord) -> None: ...

    async def get_session(self, digest: str) -> SessionRecord | None: ...

    async def delete_session(self, digest: str) -> None: ...

    async def delete_user_sessions(self, user_id: str) -> None: ...

    async def delete_provider_sessions(
        self, provider: str, *, subject: str | None, sid: str | None
    ) -> int:
        """Back-channel logout: end the sessions of this provider's ``subject`` and/or ``sid``."""
        ...


class UpstreamTokenStore(Protocol):
    async def save_upstream_tokens(self, user_id: str, provider: str, sealed: str) -> None: ...

    async def load_upstream_tokens(self, user_id: str, provider: str) -> str | None: ...

    async def delete_upstream_tokens(self, user_id: str, provider: str) -> None: ...

    async def delete_upstream_tokens_if(self, user_id: str, provider: str, *, sealed: str) -> bool:
        """Compare-and-delete: delete the tokens only while the stored value is still ``sealed``
        (another worker may have stored fresh ones meanwhile); ``True`` when a row was deleted."""
        ...


class TransactionStore(Protocol):
    async def consume_transaction(self, digest: str, *, expires_at: float, now: float) -> bool:
        """Record a finished login transaction; ``False`` when it was already recorded."""
        ...


class LoginStore(IdentityStore, AppSessionStore, UpstreamTokenStore, TransactionStore, Protocol):
    """Everything the client toolkit stores for signing people in, in one object (not the
    authorization server's ``ClientStore`` of registered OAuth clients)."""


# Deprecated names (documented until this release; removed in the next one).
SessionStore = AppSessionStore
ClientStore = LoginStore
