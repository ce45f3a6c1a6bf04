"""Client authentication at the token, revocation and introspection endpoints.

- RFC 6749 §2.3.1: ``client_secret_basic`` (id and secret form-urlencoded, then Base64) and
  ``client_secret_post``; a client uses one method per request (§2.3), so a request that carries
  two is ``invalid_request``.
- Public clients authenticate with ``none`` and send their ``client_id`` (RFC 6749 §3.2.1).
- A failed authentication is ``invalid_client`` (401); with Basic the response carries
  ``WWW-Authenticate`` (RFC 6749 §5.2). An unknown client and a wrong secret get the same answer.
- Secrets are compared by their HMAC digests in constant time.
- Rate limits (RFC 6749 §2.3.1: endpoints that authenticate clients with passwords are protected
  against brute force) are counted after authentication, through a :class:`ClientRateLimit` the
  server adapter supplies: per authenticated client on success, per caller on failure. Core
  keeps no counters.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote_plus

from tokensmith.core.errors import InvalidClient, InvalidRequest
from tokensmith.core.models import Client
from tokensmith.core.secrets import digest, equals

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="tokensmith", charset="UTF-8"'}


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What the request presented: the claimed client id and how it authenticates."""

    client_id: str
    method: str
    secret: str | None = field(default=None, repr=False)
    assertion: str | None = field(default=None, repr=False)


class ClientRateLimit(Protocol):
    """The rate limits of one request around its client authentication, implemented by the
    server adapter. Each method counts one request and raises ``SlowDown`` (429) past a limit.

    Keys come from what was proven, never from what was claimed: ``authenticated`` gets the
    client whose secret, assertion or (public clients) ``client_id`` was verified, with Basic
    credentials already form-urldecoded; ``failed`` knows only the caller, so a request that
    does not authenticate cannot spend a client's budget.
    """

    async def authenticated(self, client: Client) -> None:
        """Count a request of ``client``, which has just authenticated."""
        ...

    async def failed(self) -> None:
        """Count a request whose client authentication failed."""
        ...


def _invalid(method: str, description: str = "client authentication failed") -> InvalidClient:
    headers = BASIC_CHALLENGE if method == "client_secret_basic" else None
    return InvalidClient(description, headers=headers)


def parse_basic(header: str) -> tuple[str, str]:
    """Decode an ``Authorization: Basic`` header into (client_id, secret)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise _invalid("client_secret_basic", "malformed Basic authorization header")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid("client_secret_basic", "malformed Basic authorization header") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise _invalid("client_secret_basic", "malformed Basic authorization header")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    # Like every other parameter (core.params): no NUL or other control characters, which
    # some databases cannot even compare.
    if not client_id.isprintable() or not secret.isprintable():
        raise _invalid("client_secret_basic", "malformed Basic authorization header")
    return client_id, secret


def extract_credentials(params: dict[str, str], authorization: str | None) -> ClientCredentials:
    """Find the one authentication method the request uses."""
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    assertion = params.get("client_assertion")
    methods = [
        name
        for name, present in (
            ("client_secret_basic", authorization is not None),
            ("client_secret_post", body_secret is not None),
            ("private_key_jwt", assertion is not None),
        )
        if present
    ]
    if len(methods) > 1:
        raise InvalidRequest("the client used more than one authentication method")
    if authorization is not None:
        client_id, secret = parse_basic(authorization)
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id in the body differs from the authenticated client")
        return ClientCredentials(client_id, "client_secret_basic", secret=secret)
    if assertion is not None:
        if params.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            raise InvalidRequest("client_assertion_type must be the jwt-bearer URN")
        return ClientCredentials(body_id or "", "private_key_jwt", assertion=assertion)
    if body_id is None:
        raise InvalidClient("client authentication is required")
    if body_secret is not None:
        return ClientCredentials(body_id, "client_secret_post", secret=body_secret)
    return ClientCredentials(body_id, "none")


def check_secret(client: Client | None, creds: ClientCredentials, pepper: bytes) -> Client:
    """Authenticate a client by secret or as a public client. Assertions are checked elsewhere."""
    if client is None:
        # Same answer as a wrong secret: no client enumeration. Spend the same HMAC.
        digest(creds.secret or "", pepper)
        raise _invalid(creds.method)
    if creds.method != client.token_endpoint_auth_method:
        raise _invalid(creds.method, "client authentication failed")
    if creds.method == "none":
        if client.is_confidential:
            raise _invalid(creds.method)
        return client
    if client.secret_digest is None or creds.secret is None:
        raise _invalid(creds.method)
    if not equals(digest(creds.secret, pepper), client.secret_digest):
        raise _invalid(creds.method)
    return client
