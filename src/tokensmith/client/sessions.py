"""The app's own server-side sessions: create, rotate, load, end.

The browser holds only a random id (the session cookie); the store keeps its HMAC digest
(:meth:`CookieKeyRing.digest`), so a leaked table cannot be replayed as cookies. The CSRF token of
a session is derived from that digest. The ID token kept for RP-initiated logout is sealed, bound
to the session it belongs to. These are not the authorization server's browser sessions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from tokensmith.client.config import ClientConfig
from tokensmith.client.crypto import CookieKeyRing
from tokensmith.client.models import SessionRecord
from tokensmith.client.storage import AppSessionStore

__all__ = ["ActiveSession", "AppSessions", "EndedSession"]

logger = logging.getLogger("tokensmith.client")

_MAX_COOKIE = 256


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """The signed-in user of a request."""

    user_id: str
    provider: str
    expires_at: float
    csrf_token: str = field(repr=False)
    digest: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EndedSession:
    """What a logout still needs of a session it just deleted: its provider and ID token
    (``has_id_token`` even when the sealed ID token no longer opens, e.g. a rotated secret)."""

    provider: str
    has_id_token: bool
    id_token: str | None = field(repr=False)


class AppSessions:
    """The app's sessions on an :class:`AppSessionStore`, keyed by cookie digests."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        store: AppSessionStore,
        keys: CookieKeyRing,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.clock = clock

    def _digest(self, cookie_value: str) -> str:
        return self.keys.digest("session", cookie_value)

    async def create(
        self,
        user_id: str,
        provider: str,
        *,
        id_token: str | None,
        now: float,
        subject: str | None,
        sid: str | None,
    ) -> str:
        """A new session; the value of its cookie."""
        raw = secrets.token_urlsafe(32)
        digest = self._digest(raw)
        sealed_id_token = (
            self.keys.tokens.seal(id_token.encode(), b"id_token|" + digest.encode())
            if id_token
            else None
        )
        await self.store.create_session(
            digest,
            SessionRecord(
                user_id=user_id,
                provider=provider,
                created_at=now,
                expires_at=now + self.config.session_ttl,
                id_token=sealed_id_token,
                subject=subject,
                sid=sid,
            ),
        )
        return raw

    async def rotate(
        self,
        previous: str | None,
        user_id: str,
        provider: str,
        *,
        id_token: str | None,
        now: float,
        subject: str | None,
        sid: str | None,
    ) -> str:
        """A sign-in ends the browser's previous session (session fixation) and starts a new one."""
        if previous:
            await self.store.delete_session(self._digest(previous))
        return await self.create(
            user_id, provider, id_token=id_token, now=now, subject=subject, sid=sid
        )

    async def load(self, cookie_value: str | None) -> ActiveSession | None:
        """The session of this cookie, or ``None`` (unknown, or expired - then deleted)."""
        if not cookie_value or len(cookie_value) > _MAX_COOKIE:
            return None
        digest = self._digest(cookie_value)
        record = await self.store.get_session(digest)
        if record is None:
            return None
        if record.expires_at <= self.clock():
            await self.store.delete_session(digest)
            return None
        return ActiveSession(
            user_id=record.user_id,
            provider=record.provider,
            expires_at=record.expires_at,
            csrf_token=self.keys.csrf_token(digest),
            digest=digest,
        )

    def check_csrf(self, session: ActiveSession, token: str | None) -> bool:
        return bool(token) and secrets.compare_digest(
            session.csrf_token.encode(), (token or "").encode()
        )

    async def end(self, session: ActiveSession) -> EndedSession | None:
        """Delete the session server-side; its provider and (opened) ID token, if it existed."""
        record = await self.store.get_session(session.digest)
        await self.store.delete_session(session.digest)
        if record is None:
            return None
        id_token: str | None = None
        if record.id_token is not None:
            raw = self.keys.tokens.open(record.id_token, b"id_token|" + session.digest.encode())
            id_token = None if raw is None else raw.decode()
        return EndedSession(
            provider=record.provider, has_id_token=record.id_token is not None, id_token=id_token
        )

    async def end_provider_sessions(
        self, provider: str, *, subject: str | None, sid: str | None
    ) -> int:
        """Back-channel logout: end the sessions of this provider's ``subject`` and/or ``sid``."""
        return await self.store.delete_provider_sessions(provider, subject=subject, sid=sid)
