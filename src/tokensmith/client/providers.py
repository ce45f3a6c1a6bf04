"""Sign-in providers, described by configuration.

Two kinds exist:

* :class:`GitHubProvider` - plain OAuth 2.0 (RFC 6749): there is no ID token, so the identity comes
  from ``GET /user`` (GitHub's numeric user id) and ``GET /user/emails`` (the verified primary
  address). ``base_url`` and ``api_url`` make GitHub Enterprise Server (or a test stand-in) work.
* :class:`OIDCProvider` - OpenID Connect, configured by discovery from a pinned issuer (OpenID
  Connect Discovery 1.0 §4.3, RFC 8414 §3.3): the ``issuer`` in the document must equal the
  configured one byte for byte. :func:`google` is this with Google's issuer.

Scopes are minimal by default. Client secrets are hidden from ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["GitHubProvider", "OIDCProvider", "Provider", "github", "google", "oidc"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubProvider:
    """GitHub (github.com or GitHub Enterprise Server): OAuth 2.0 with PKCE S256."""

    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    scopes: tuple[str, ...] = ("read:user", "user:email")
    display_name: str = "GitHub"
    timeout: float = 10.0
    kind: Literal["github"] = "github"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))

    @property
    def issuer(self) -> str:
        """GitHub sends no ``iss``; should it ever, it must be this (RFC 9207)."""
        return self.base_url

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/login/oauth/access_token"

    @property
    def api_base_urls(self) -> tuple[str, ...]:
        return (self.api_url,)


@dataclass(frozen=True, slots=True, kw_only=True)
class OIDCProvider:
    """Any OpenID Connect provider, by issuer URL (discovery with the issuer pinned).

    ``id_token_algs`` restricts the ID-token signature algorithms further than the provider's
    advertised ``id_token_signing_alg_values_supported``; ``none`` and HMAC algorithms are never
    accepted. ``api_base_urls`` lists where :class:`~tokensmith.client.ProviderAPI` may send the
    user's access token (the UserInfo endpoint is always allowed). ``timeout`` is the deadline of
    each call to the provider, body included. Discovery is cached for ``discovery_ttl``; a failed
    discovery for ``discovery_failure_ttl``, so that while the provider is down each login or
    back-channel request does not cost another outbound call.
    """

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    display_name: str = "OpenID Connect"
    id_token_algs: tuple[str, ...] | None = None
    api_base_urls: tuple[str, ...] = ()
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    clock_skew: float = 60.0
    max_id_token_age: float = 600.0
    timeout: float = 10.0
    discovery_ttl: float = 3600.0
    discovery_failure_ttl: float = 5.0
    kind: Literal["oidc"] = "oidc"

    def __post_init__(self) -> None:
        if "openid" not in self.scopes:
            raise ValueError("an OpenID Connect provider needs the 'openid' scope")


Provider = GitHubProvider | OIDCProvider


def github(
    client_id: str,
    client_secret: str,
    *,
    base_url: str = "https://github.com",
    api_url: str = "https://api.github.com",
    scopes: tuple[str, ...] = ("read:user", "user:email"),
) -> GitHubProvider:
    """GitHub. For GitHub Enterprise Server pass ``base_url="https://ghe.example"`` and
    ``api_url="https://ghe.example/api/v3"``."""
    return GitHubProvider(
        client_id=client_id,
        client_secret=client_secret,
        base_url=base_url,
        api_url=api_url,
        scopes=scopes,
    )


def google(
    client_id: str,
    client_secret: str,
    *,
    scopes: tuple[str, ...] = ("openid", "email", "profile"),
) -> OIDCProvider:
    """Google, by discovery from ``https://accounts.google.com``."""
    return OIDCProvider(
        issuer="https://accounts.google.com",
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        display_name="Google",
        api_base_urls=("https://www.googleapis.com/",),
    )


def oidc(
    issuer: str,
    client_id: str,
    client_secret: str,
    *,
    scopes: tuple[str, ...] = ("openid", "email", "profile"),
    display_name: str = "OpenID Connect",
) -> OIDCProvider:
    """Any OpenID Connect provider by its issuer URL (e.g. a tokensmith authorization server)."""
    return OIDCProvider(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        display_name=display_name,
    )
