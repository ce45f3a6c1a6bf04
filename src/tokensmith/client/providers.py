"""Sign-in providers, described by configuration.

Two kinds exist:

* :class:`GitHubProvider` - plain OAuth 2.0 (RFC 6749): there is no ID token, so the identity comes
  from ``GET /user`` (GitHub's numeric user id) and ``GET /user/emails`` (the verified primary
  address). ``base_url`` and ``api_url`` make GitHub Enterprise Server (or a test stand-in) work.
* :class:`OIDCProvider` - OpenID Connect, configured by discovery from a pinned issuer (OpenID
  Connect Discovery 1.0 §4.3, RFC 8414 §3.3): the ``issuer`` in the document must equal the
  configured one byte for byte. :func:`google` is this with Google's issuer.

Both implement the :class:`Provider` protocol: how the provider's endpoints are found
(:meth:`Provider.discover`), who signed in (:meth:`Provider.identify`), where the user's access
token may be sent (:meth:`Provider.api_urls`) and whether it speaks back-channel logout
(:meth:`Provider.check_logout_token`). The login flow, the app sessions and the upstream-token
vault ask the protocol and never branch on the provider's class.

Scopes are minimal by default. Client secrets are hidden from ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from tokensmith.client.errors import InvalidIdToken
from tokensmith.client.flow import (
    ProviderMetadata,
    fetch_github_identity,
    fetch_metadata,
    fetch_userinfo,
    github_metadata,
    identity_from_claims,
)
from tokensmith.client.id_token import KeyLookup, allowed_id_token_algs, validate_id_token
from tokensmith.client.logout_token import LogoutRequest, validate_logout_token
from tokensmith.client.models import ExternalIdentity, UpstreamTokens

__all__ = [
    "GitHubProvider",
    "KeysFor",
    "OIDCProvider",
    "Provider",
    "SignedIn",
    "github",
    "google",
    "oidc",
]

KeysFor = Callable[[str], KeyLookup]
"""The signing keys published at a ``jwks_uri`` (the directory's cached JWKS lookup)."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who a callback's token response belongs to, and the ID token that said so (if any)."""

    identity: ExternalIdentity
    id_token: str | None = field(default=None, repr=False)


class Provider(Protocol):
    """What the client toolkit asks of a sign-in provider."""

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def scopes(self) -> tuple[str, ...]: ...

    @property
    def display_name(self) -> str: ...

    @property
    def timeout(self) -> float:
        """The deadline of each call to the provider, body included."""
        ...

    @property
    def openid(self) -> bool:
        """OpenID Connect: a ``nonce`` in the request, an ID token in the answer, and an
        ``id_token_hint`` for RP-initiated logout."""
        ...

    @property
    def extra_authorize_params(self) -> tuple[tuple[str, str], ...]:
        """Additional authorization-request parameters (never overriding the toolkit's own)."""
        ...

    @property
    def discovery_ttl(self) -> float:
        """How long the result of :meth:`discover` is kept."""
        ...

    @property
    def discovery_failure_ttl(self) -> float:
        """How long a failed :meth:`discover` is remembered before it is tried again."""
        ...

    async def discover(self, http: httpx.AsyncClient) -> ProviderMetadata:
        """The provider's endpoints; raises :class:`ProviderUnavailable` when unusable."""
        ...

    async def identify(
        self,
        http: httpx.AsyncClient,
        *,
        name: str,
        metadata: ProviderMetadata,
        token_response: dict[str, Any],
        tokens: UpstreamTokens,
        nonce: str | None,
        keys_for: KeysFor,
        now: float,
    ) -> SignedIn:
        """The verified identity behind a token response (after the code exchange)."""
        ...

    def api_urls(self, metadata: ProviderMetadata) -> tuple[str, ...]:
        """Where the user's access token may be sent (RFC 9700 §4.9)."""
        ...

    async def check_logout_token(
        self,
        token: str,
        *,
        metadata: ProviderMetadata,
        keys_for: KeysFor,
        now: float,
    ) -> tuple[LogoutRequest, float]:
        """OpenID Connect Back-Channel Logout 1.0 §2.6: the validated logout request and until
        when its ``jti`` must be refused a second time; :class:`InvalidIdToken` otherwise."""
        ...


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

    @property
    def openid(self) -> bool:
        return False

    @property
    def extra_authorize_params(self) -> tuple[tuple[str, str], ...]:
        return ()

    @property
    def discovery_ttl(self) -> float:
        """GitHub's endpoints are fixed below ``base_url``: nothing to discover again."""
        return math.inf

    @property
    def discovery_failure_ttl(self) -> float:
        return 0.0

    async def discover(self, http: httpx.AsyncClient) -> ProviderMetadata:
        """GitHub publishes no metadata; no outbound call."""
        return github_metadata(self)

    async def identify(
        self,
        http: httpx.AsyncClient,
        *,
        name: str,
        metadata: ProviderMetadata,
        token_response: dict[str, Any],
        tokens: UpstreamTokens,
        nonce: str | None,
        keys_for: KeysFor,
        now: float,
    ) -> SignedIn:
        """No ID token: ``GET /user`` and ``GET /user/emails`` with the new access token."""
        identity = await fetch_github_identity(
            http, self, name=name, access_token=tokens.access_token
        )
        return SignedIn(identity=identity)

    def api_urls(self, metadata: ProviderMetadata) -> tuple[str, ...]:
        return self.api_base_urls

    async def check_logout_token(
        self,
        token: str,
        *,
        metadata: ProviderMetadata,
        keys_for: KeysFor,
        now: float,
    ) -> tuple[LogoutRequest, float]:
        raise InvalidIdToken("GitHub has no back-channel logout")


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

    @property
    def openid(self) -> bool:
        return True

    async def discover(self, http: httpx.AsyncClient) -> ProviderMetadata:
        """Discovery with the issuer pinned (OpenID Connect Discovery 1.0 §4.3)."""
        return await fetch_metadata(http, self)

    async def identify(
        self,
        http: httpx.AsyncClient,
        *,
        name: str,
        metadata: ProviderMetadata,
        token_response: dict[str, Any],
        tokens: UpstreamTokens,
        nonce: str | None,
        keys_for: KeysFor,
        now: float,
    ) -> SignedIn:
        """The ID token (OpenID Connect Core §3.1.3.7), then UserInfo when the ID token carries
        no ``email`` (its ``sub`` must match, §5.3.2)."""
        raw = token_response.get("id_token")
        id_token = raw if isinstance(raw, str) else None
        if id_token is None or nonce is None or metadata.jwks_uri is None:
            raise InvalidIdToken("token response without an id_token")
        claims = await validate_id_token(
            id_token,
            get_key=keys_for(metadata.jwks_uri),
            issuer=metadata.issuer,
            client_id=self.client_id,
            nonce=nonce,
            allowed_algs=allowed_id_token_algs(
                metadata.id_token_algs_advertised, self.id_token_algs
            ),
            now=now,
            leeway=self.clock_skew,
            max_age=self.max_id_token_age,
            access_token=tokens.access_token,
        )
        userinfo: dict[str, Any] | None = None
        if "email" not in claims and metadata.userinfo_endpoint is not None:
            userinfo = await fetch_userinfo(http, self, metadata, tokens.access_token)
        identity = identity_from_claims(
            claims, name=name, issuer=metadata.issuer, userinfo=userinfo
        )
        return SignedIn(identity=identity, id_token=id_token)

    def api_urls(self, metadata: ProviderMetadata) -> tuple[str, ...]:
        """The configured ``api_base_urls`` and the UserInfo endpoint."""
        if metadata.userinfo_endpoint:
            return (*self.api_base_urls, metadata.userinfo_endpoint)
        return self.api_base_urls

    async def check_logout_token(
        self,
        token: str,
        *,
        metadata: ProviderMetadata,
        keys_for: KeysFor,
        now: float,
    ) -> tuple[LogoutRequest, float]:
        if metadata.jwks_uri is None:
            raise InvalidIdToken("provider has no jwks_uri")
        request = await validate_logout_token(
            token,
            get_key=keys_for(metadata.jwks_uri),
            issuer=metadata.issuer,
            client_id=self.client_id,
            allowed_algs=allowed_id_token_algs(
                metadata.id_token_algs_advertised, self.id_token_algs
            ),
            now=now,
            leeway=self.clock_skew,
        )
        # §2.4 jti: remembered until the token could no longer pass validation
        return request, request.exp + self.clock_skew


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
