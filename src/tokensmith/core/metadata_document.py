"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP
specification's preferred way for a client to identify itself): a ``client_id`` that is an https
URL names a JSON document, fetched from that URL, that describes the client.

Here, with no I/O: which URLs may be client IDs (``check_client_id_url``), which domains the
operator allows (``domain_allowed``), and what a fetched document must say to become a
``Client`` (``client_from_document``). The fetch itself is an edge concern behind the
``DocumentFetcher`` port (``tokensmith.server.client_documents`` implements it with the SSRF
rules: addresses checked after DNS resolution, no redirects, size and time limits).

Policy:
- The URL: https, a host, a path other than ``/``, no user information, no fragment, no query
  parameters' worth of surprises (``.``/``..`` path segments are refused), at most 128 characters
  (client IDs are stored in 128-character columns). Plain http only for a loopback host under
  ``TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK`` (development).
- The document: a JSON object whose ``client_id`` equals the URL exactly; ``redirect_uris`` a
  non-empty list registrable by today's rules (``application_type: native`` gets the RFC 8252
  loopback-port rule); grants ``authorization_code`` (and ``refresh_token``) only, response type
  ``code`` only; a public client (``token_endpoint_auth_method`` ``none``, the default) unless it
  carries an inline ``jwks`` for ``private_key_jwt``. Anything that only makes sense with a shared
  secret (``client_secret``, ``client_secret_expires_at``, a ``client_secret_*`` method) is
  refused, as is ``jwks_uri`` (not supported for client authentication here).
- The client is dynamic (``origin="metadata_document"``): tokens only for APIs open to dynamic
  clients, never first party; its name is ``client_name`` or else the URL's host.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from tokensmith.core.errors import OAuthError
from tokensmith.core.models import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    REFUSED_GRANTS,
    AuthMethod,
    Client,
)
from tokensmith.core.redirect_uris import LOOPBACK_HOSTS, check_registrable
from tokensmith.core.registration import check_client_jwks
from tokensmith.core.scopes import check_scope_token

MAX_CLIENT_ID_LENGTH = 128
SECRET_FIELDS = ("client_secret", "client_secret_expires_at")
ALLOWED_GRANTS = (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN)


class DocumentError(Exception):
    """A metadata document that cannot be used; ``detail`` says why (for logs and the error
    page: it names only the client's own URL and what is wrong with it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    body: bytes
    max_age: int
    """How long the document may be reused (HTTP caching, bounded by the fetcher)."""


class DocumentFetcher(Protocol):
    """Fetches a metadata document safely (the edge: ``tokensmith.server.client_documents``).
    Raises ``DocumentError`` for anything refused or failed."""

    async def fetch(self, url: str) -> FetchedDocument: ...


def looks_like_document_url(client_id: str) -> bool:
    """Whether ``client_id`` is meant as a metadata document URL (rather than an opaque id)."""
    return client_id.startswith(("https://", "http://"))


def check_client_id_url(url: str, *, allow_loopback: bool) -> str:
    """Raise ``DocumentError`` unless ``url`` may be a metadata document client ID."""
    if len(url) > MAX_CLIENT_ID_LENGTH:
        raise DocumentError(f"a client ID URL has at most {MAX_CLIENT_ID_LENGTH} characters")
    if not url.isprintable() or any(c in url for c in " \\\"'<>"):
        raise DocumentError("a client ID URL has no spaces, quotes or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise DocumentError("the client ID is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise DocumentError("a client ID URL needs a host")
    if parts.scheme == "http":
        if not (allow_loopback and host in LOOPBACK_HOSTS):
            raise DocumentError(
                "a client ID URL must use https (http only for loopback hosts, and only when "
                "TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK is set)"
            )
    elif parts.scheme != "https":
        raise DocumentError("a client ID URL must use https")
    if parts.username is not None or parts.password is not None:
        raise DocumentError("a client ID URL has no user information")
    if "#" in url:
        raise DocumentError("a client ID URL has no fragment")
    if parts.path in ("", "/"):
        raise DocumentError("a client ID URL has a path (the document's location)")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise DocumentError("a client ID URL has no . or .. path segments")
    return url


def domain_of(url: str) -> str:
    """The host a client ID URL names (shown on the consent page)."""
    return (urlsplit(url).hostname or "").lower()


def domain_allowed(host: str, *, allowed: Iterable[str], blocked: Iterable[str]) -> bool:
    """The operator's lists: a host is blocked when it or a parent domain is listed in
    ``blocked``; when ``allowed`` is not empty, it must be listed there (or a parent domain)."""

    def within(domains: Iterable[str]) -> bool:
        return any(host == d or host.endswith("." + d) for d in (x.lower() for x in domains))

    if within(blocked):
        return False
    allowed = tuple(allowed)
    return not allowed or within(allowed)


def client_from_document(url: str, raw: bytes, *, now: int) -> Client:
    """The client the document at ``url`` describes; ``DocumentError`` when it cannot be one."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DocumentError("the document is not JSON") from None
    if not isinstance(data, dict):
        raise DocumentError("the document is not a JSON object")
    if data.get("client_id") != url:
        raise DocumentError("the document's client_id is not exactly its URL")
    for name in SECRET_FIELDS:
        if name in data:
            raise DocumentError(f"a metadata document must not hold {name}")
    method = data.get("token_endpoint_auth_method", "none")
    if method not in ("none", "private_key_jwt"):
        raise DocumentError(
            "token_endpoint_auth_method must be none or private_key_jwt (no shared secrets)"
        )
    auth: AuthMethod = "private_key_jwt" if method == "private_key_jwt" else "none"
    if "jwks_uri" in data:
        raise DocumentError("jwks_uri is not supported: put the public keys in jwks")
    jwks: str | None = None
    if auth == "private_key_jwt":
        try:
            jwks = check_client_jwks(json.dumps(data.get("jwks")) if "jwks" in data else None)
        except OAuthError as exc:
            raise DocumentError(exc.description) from None
    elif "jwks" in data:
        raise DocumentError("jwks is only for private_key_jwt")
    grants = _strings(data, "grant_types", default=[GRANT_AUTHORIZATION_CODE])
    for grant in grants:
        if grant in REFUSED_GRANTS:
            raise DocumentError(REFUSED_GRANTS[grant])
        if grant not in ALLOWED_GRANTS:
            raise DocumentError(
                f"grant type {grant!r} is not available to metadata-document clients"
            )
    if GRANT_AUTHORIZATION_CODE not in grants:
        raise DocumentError("a metadata-document client uses the authorization_code grant")
    if _strings(data, "response_types", default=["code"]) != ["code"]:
        raise DocumentError('response_types must be ["code"]')
    application_type = data.get("application_type", "web")
    if application_type not in ("web", "native"):
        raise DocumentError("application_type must be web or native")
    native = application_type == "native"
    if native and auth != "none":
        raise DocumentError("native apps are public clients (token_endpoint_auth_method none)")
    uris = _strings(data, "redirect_uris", default=[])
    if not uris:
        raise DocumentError("the document lists no redirect_uris")
    try:
        redirect_uris = tuple(dict.fromkeys(check_registrable(u, native=native) for u in uris))
        scope = data.get("scope", "")
        if not isinstance(scope, str):
            raise DocumentError("scope must be a string")
        scopes = tuple(dict.fromkeys(check_scope_token(s) for s in scope.split()))
    except OAuthError as exc:
        raise DocumentError(exc.description) from None
    name = data.get("client_name", domain_of(url))
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 200:
        raise DocumentError("client_name must be a string of 1 to 200 characters")
    return Client(
        client_id=url,
        name=name.strip(),
        client_type="public" if auth == "none" else "confidential",
        redirect_uris=redirect_uris,
        grant_types=tuple(dict.fromkeys(grants)),
        scopes=scopes,
        apis=(),
        token_endpoint_auth_method=auth,
        native=native,
        jwks=jwks,
        created_at=now,
        origin="metadata_document",
    )


def _strings(data: dict[str, object], name: str, *, default: list[str]) -> list[str]:
    value = data.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DocumentError(f"{name} must be a list of strings")
    return value
