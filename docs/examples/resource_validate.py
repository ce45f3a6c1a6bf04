"""Validate an access token without any web framework (docs/resource-server.md)."""

import httpx

from tokensmith.resource import InvalidTokenError, Principal, TokenValidator


async def who_is_calling(token: str, *, issuer: str, audience: str) -> Principal | None:
    async with httpx.AsyncClient() as http:
        validator = TokenValidator(
            http=http,
            issuer=issuer,  # discovery: {issuer}/.well-known/oauth-authorization-server
            audience=audience,  # the "aud" your API's tokens carry
            algorithms=["ES256", "EdDSA"],  # never "none" nor HS*
            leeway=30,  # seconds of clock skew tolerated on exp/nbf/iat
        )
        try:
            return await validator.validate(token)
        except InvalidTokenError as error:
            print("refused:", error.detail)  # the detail is for logs, never for the client
            return None
