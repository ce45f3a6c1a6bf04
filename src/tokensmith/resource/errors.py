"""Errors raised by the resource-server toolkit.

RFC 6750 §3.1 defines the codes a protected resource sends back: ``invalid_token`` (401),
``insufficient_scope`` (403), ``invalid_request`` (400). Each error here carries that code and
status plus an internal ``detail`` that is logged, never sent to the client.
"""

from __future__ import annotations

__all__ = [
    "InsufficientScopeError",
    "InvalidRequestError",
    "InvalidTokenError",
    "IssuerUnavailableError",
    "KeyNotFoundError",
    "ResourceError",
]


class ResourceError(Exception):
    """Base class: an RFC 6750 error code, an HTTP status and an internal detail."""

    error: str = "invalid_token"
    status_code: int = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidTokenError(ResourceError):
    """The token is malformed, expired, revoked, not for us, or its signature is wrong (401)."""

    error = "invalid_token"
    status_code = 401


class KeyNotFoundError(InvalidTokenError):
    """No usable verification key for the token's ``kid``/``alg`` in the issuer's JWKS."""


class InvalidRequestError(ResourceError):
    """The request is malformed, e.g. two ``Authorization`` headers (400, RFC 6750 §3.1)."""

    error = "invalid_request"
    status_code = 400


class InsufficientScopeError(ResourceError):
    """The token is valid but lacks a scope the resource needs (403, RFC 6750 §3.1)."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, detail: str, *, required: frozenset[str]) -> None:
        super().__init__(detail)
        self.required = required


class IssuerUnavailableError(ResourceError):
    """The issuer's metadata, JWKS or introspection endpoint could not be reached (503).

    This is our problem, not the client's: the token may be perfectly valid.
    """

    error = "temporarily_unavailable"
    status_code = 503
