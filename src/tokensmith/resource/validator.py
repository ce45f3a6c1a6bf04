"""The validator contract and a validator that routes by token shape."""

from __future__ import annotations

from typing import Protocol

from .principal import Principal

__all__ = ["CombinedValidator", "Validator", "looks_like_jwt"]


class Validator(Protocol):
    """Anything that turns a bearer token into a :class:`Principal` or raises a ResourceError."""

    async def validate(self, token: str) -> Principal: ...


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three segments, the first a base64url JSON object (``eyJ`` = ``{"``)."""
    return token.count(".") == 2 and token.startswith("eyJ")


class CombinedValidator:
    """JWT-shaped tokens go to ``jwt``, every other token to ``opaque`` (e.g. introspection)."""

    def __init__(self, *, jwt: Validator, opaque: Validator) -> None:
        self.jwt = jwt
        self.opaque = opaque

    async def validate(self, token: str) -> Principal:
        if looks_like_jwt(token):
            return await self.jwt.validate(token)
        return await self.opaque.validate(token)
