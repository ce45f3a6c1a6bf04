"""Authorization server metadata (RFC 8414 §2), advertising only what is implemented."""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.core.client_assertion import ASSERTION_ALGS
from tokensmith.settings import Settings

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def authorization_server_metadata(
    settings: Settings, *, grant_types: Iterable[str]
) -> dict[str, object]:
    url = settings.url
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": url(settings.authorize_path),
        "token_endpoint": url(settings.token_path),
        "jwks_uri": url(settings.jwks_path),
        "revocation_endpoint": url(settings.revoke_path),
        "introspection_endpoint": url(settings.introspect_path),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": sorted(grant_types),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
