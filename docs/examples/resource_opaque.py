"""Accept JWT and opaque access tokens (RFC 7662 introspection) (docs/resource-server.md)."""

import httpx

from tokensmith.resource import CombinedValidator, IntrospectionValidator, TokenValidator


def make_validator(
    http: httpx.AsyncClient, *, issuer: str, audience: str, client_id: str, client_secret: str
) -> CombinedValidator:
    return CombinedValidator(
        jwt=TokenValidator(http=http, issuer=issuer, audience=audience),
        opaque=IntrospectionValidator(
            http=http,
            issuer=issuer,  # discovers introspection_endpoint
            audience=audience,
            client_id=client_id,  # the resource server's own client credentials
            client_secret=client_secret,  # sent with client_secret_basic
            cache_ttl=30,  # a revoked token is refused at most 30 s later
        ),
    )
