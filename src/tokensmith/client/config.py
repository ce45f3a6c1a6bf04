"""Configuration of the client toolkit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tokensmith.client.providers import Provider

__all__ = ["ClientConfig"]

_COOKIE_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """How the app signs people in.

    ``secret_key``: at least 32 random bytes (keep it in your secret store); every key of the
    toolkit is derived from it. ``base_url``: the app's public origin, e.g. ``https://app.example``;
    redirect URIs are built from it (never from the ``Host`` header), and when it is https the
    cookies are ``Secure`` and ``__Host-`` prefixed. ``frontend_url``: for a separate frontend,
    where the browser goes after login/logout (nothing secret is ever added to it).
    ``require_verified_email``: refuse sign-ins whose provider does not vouch for an e-mail.
    ``cookie_prefix``: the app's cookies are ``<prefix>_session`` and ``<prefix>_tx_...``
    (``__Host-`` in front over https). Cookies are not isolated by port, so the default is
    derived from ``base_url``: ``tsc_`` and 8 hex digits of its SHA-256, different for every
    app on one host and never one of the authorization server's ``tokensmith_as_...`` names.
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
    cookie_prefix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError("base_url must be an origin such as https://app.example")
        if not self.cookie_prefix:
            tag = hashlib.sha256(self.base_url.encode()).hexdigest()[:8]
            object.__setattr__(self, "cookie_prefix", f"tsc_{tag}")
        elif not _COOKIE_PREFIX_RE.match(self.cookie_prefix):
            raise ValueError(
                "cookie_prefix: 1-40 letters, digits, - and _, starting with a letter or digit"
            )
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
    def cookie_name_prefix(self) -> str:
        """What every cookie name of the app starts with: ``__Host-`` over https, then
        ``cookie_prefix``."""
        return f"__Host-{self.cookie_prefix}" if self.secure else self.cookie_prefix

    @property
    def session_cookie_name(self) -> str:
        return f"{self.cookie_name_prefix}_session"

    def redirect_uri(self, provider: str) -> str:
        return f"{self.base_url}{self.route_prefix}/{provider}/callback"

    def landing_url(self, path: str) -> str:
        """Where the browser goes after login/logout: the frontend or this app, plus ``path``."""
        return f"{self.frontend_url or self.base_url}{path}"
