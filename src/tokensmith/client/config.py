"""Configuration of the client toolkit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tokensmith.client.providers import Provider

__all__ = ["ClientConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """How the app signs people in.

    ``secret_key``: at least 32 random bytes (keep it in your secret store); every key of the
    toolkit is derived from it. ``base_url``: the app's public origin, e.g. ``https://app.example``;
    redirect URIs are built from it (never from the ``Host`` header), and when it is https the
    cookies are ``Secure`` and ``__Host-`` prefixed. ``frontend_url``: for a separate frontend,
    where the browser goes after login/logout (nothing secret is ever added to it).
    ``require_verified_email``: refuse sign-ins whose provider does not vouch for an e-mail.
    """

    secret_key: bytes = field(repr=False)
    base_url: str
    providers: Mapping[str, Provider]
    route_prefix: str = "/auth"
    frontend_url: str | None = None
    post_login_path: str = "/"
    post_logout_path: str = "/"
    session_ttl: float = 8 * 3600.0
    transaction_ttl: float = 600.0
    require_verified_email: bool = True
    store_upstream_tokens: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError("base_url must be an origin such as https://app.example")
        if self.frontend_url is not None:
            object.__setattr__(self, "frontend_url", self.frontend_url.rstrip("/"))
        for name in self.providers:
            if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
                raise ValueError(f"provider name {name!r}: use letters, digits, - and _")
        if not 0 < self.transaction_ttl <= 600:
            raise ValueError("transaction_ttl must be in (0, 600] seconds")

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def session_cookie_name(self) -> str:
        return "__Host-ts_session" if self.secure else "ts_session"

    def redirect_uri(self, provider: str) -> str:
        return f"{self.base_url}{self.route_prefix}/{provider}/callback"

    def landing_url(self, path: str) -> str:
        """Where the browser goes after login/logout: the frontend or this app, plus ``path``."""
        return f"{self.frontend_url or self.base_url}{path}"
