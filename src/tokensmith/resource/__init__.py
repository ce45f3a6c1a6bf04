"""Resource-server toolkit: validate OAuth 2.0 access tokens and protect FastAPI routes.

Framework-free validation (JWT access tokens per RFC 9068, opaque tokens by RFC 7662
introspection, a JWKS cache), RFC 9728 protected-resource metadata, plus FastAPI glue in
:mod:`tokensmith.resource.fastapi`, which is imported lazily so that the validators can be used
without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cache import VerifiedTokenCache
from .discovery import AuthorizationServerMetadata, discover
from .errors import (
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    IssuerUnavailableError,
    KeyNotFoundError,
    ResourceError,
)
from .introspection import ACCESS_TOKEN_TYPES, IntrospectionValidator
from .jwks import JWKSCache
from .jwt_validator import DEFAULT_ALGORITHMS, DEFAULT_TYP, TokenValidator
from .principal import Principal
from .protected_resource import WELL_KNOWN_PROTECTED_RESOURCE, ProtectedResource
from .validator import CombinedValidator, Validator, looks_like_jwt

if TYPE_CHECKING:
    from .fastapi import BearerRoute, ResourceServer, bearer_token, protected_resource_router

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_TYP",
    "WELL_KNOWN_PROTECTED_RESOURCE",
    "AuthorizationServerMetadata",
    "BearerRoute",
    "CombinedValidator",
    "InsufficientScopeError",
    "IntrospectionValidator",
    "InvalidRequestError",
    "InvalidTokenError",
    "IssuerUnavailableError",
    "JWKSCache",
    "KeyNotFoundError",
    "Principal",
    "ProtectedResource",
    "ResourceError",
    "ResourceServer",
    "TokenValidator",
    "Validator",
    "VerifiedTokenCache",
    "bearer_token",
    "discover",
    "looks_like_jwt",
    "protected_resource_router",
]


def __getattr__(name: str) -> Any:
    if name in ("BearerRoute", "ResourceServer", "bearer_token", "protected_resource_router"):
        from . import fastapi

        return getattr(fastapi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
