"""OAuth 2.0 Protected Resource Metadata (RFC 9728): tell clients who issues tokens for an API.

A client that calls a protected resource without a token gets a 401 whose ``WWW-Authenticate``
names the resource's metadata document (RFC 9728 §5.1, ``resource_metadata="..."``); the document
names the authorization servers that issue tokens for it, the scopes it knows and how it accepts
tokens. This is how an MCP client finds where to sign in (MCP authorization, 2025-06-18 and
later), and it works the same for any HTTP API.

:class:`ProtectedResource` is the framework-free description; the FastAPI router serving it is
:func:`tokensmith.resource.fastapi.protected_resource_router`, and :class:`ResourceServer`
(``protected_resource=...``) adds ``resource_metadata`` to every challenge it sends.

The metadata URL (RFC 9728 §3.1): ``/.well-known/oauth-protected-resource`` inserted between the
host and the path of the resource identifier, so ``https://api.example/mcp`` publishes its
document at ``https://api.example/.well-known/oauth-protected-resource/mcp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["WELL_KNOWN_PROTECTED_RESOURCE", "ProtectedResource"]

WELL_KNOWN_PROTECTED_RESOURCE = "/.well-known/oauth-protected-resource"
"""The well-known URI suffix registered by RFC 9728 §3 / §8.3."""

_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _check_url(value: str, what: str) -> None:
    """An absolute https URL (http only on a loopback host), no fragment, no query.

    RFC 9728 §1.2 (resource identifiers) and RFC 8414 §2 (issuer identifiers) both require
    https, no fragment, and no query component (RFC 9728: SHOULD NOT, refused here).
    """
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a valid URL") from None
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} {value!r} must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(f"{what} {value!r} must use https (http only on a loopback host)")
    if parts.fragment or "#" in value:
        raise ValueError(f"{what} {value!r} must not have a fragment")
    if parts.query or "?" in value:
        raise ValueError(f"{what} {value!r} must not have a query")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} {value!r} must not carry credentials")


@dataclass(frozen=True, kw_only=True)
class ProtectedResource:
    """A protected resource as RFC 9728 describes it.

    ``resource``: the resource identifier, the URL clients call and the audience its tokens
    carry (e.g. ``https://mcp.example.com/mcp``). ``authorization_servers``: the issuer
    identifiers of the authorization servers whose tokens it accepts (at least one).
    ``scopes_supported``: the scopes clients may request for it. ``max_age``: how long clients
    and caches may keep the document (``Cache-Control: public, max-age=...``).
    """

    resource: str
    authorization_servers: Sequence[str]
    scopes_supported: Sequence[str] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None
    max_age: int = 3600

    def __post_init__(self) -> None:
        # any sequence of strings (a lone string is a mistake, not a list of one-letter URLs);
        # kept as tuples: hashable, immutable
        for name in ("authorization_servers", "scopes_supported"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a list of strings, not one string")
        object.__setattr__(self, "authorization_servers", tuple(self.authorization_servers))
        object.__setattr__(self, "scopes_supported", tuple(self.scopes_supported))
        _check_url(self.resource, "resource")
        if not self.authorization_servers:
            raise ValueError("a protected resource needs at least one authorization server")
        for issuer in self.authorization_servers:
            _check_url(issuer, "authorization server")
        if self.resource_documentation is not None:
            _check_url(self.resource_documentation, "resource_documentation")
        for scope in self.scopes_supported:
            # RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E
            if not scope or any(c in ' "\\' or not 0x21 <= ord(c) <= 0x7E for c in scope):
                raise ValueError(f"scope {scope!r} is not an RFC 6749 scope-token")
        if self.max_age < 0:
            raise ValueError("max_age must not be negative")

    @property
    def metadata_path(self) -> str:
        """The path of the metadata document on the resource's host (RFC 9728 §3.1)."""
        path = urlsplit(self.resource).path
        # a terminating slash right after the host is removed before inserting (§3.1)
        return WELL_KNOWN_PROTECTED_RESOURCE + ("" if path == "/" else path)

    @property
    def metadata_url(self) -> str:
        """The absolute URL of the metadata document, the ``resource_metadata`` of challenges."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.metadata_path}"

    def metadata(self) -> dict[str, Any]:
        """The metadata document (RFC 9728 §2); optional members only when set."""
        document: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
        }
        if self.scopes_supported:
            document["scopes_supported"] = list(self.scopes_supported)
        # OAuth 2.1 §5.1: tokens only in the Authorization header (?access_token= is ignored)
        document["bearer_methods_supported"] = ["header"]
        if self.resource_name is not None:
            document["resource_name"] = self.resource_name
        if self.resource_documentation is not None:
            document["resource_documentation"] = self.resource_documentation
        return document
