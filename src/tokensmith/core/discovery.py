"""Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OpenID Connect
Discovery 1.0 §3): one document served at both well-known paths, advertising only what is
implemented."""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.core.client_assertion import ASSERTION_ALGS
from tokensmith.core.mfa import ACR_VALUES_SUPPORTED
from tokensmith.core.policy import ServerPolicy

CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "amr",
    "acr",
    "sid",
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def authorization_server_metadata(
    policy: ServerPolicy, *, grant_types: Iterable[str]
) -> dict[str, object]:
    endpoints = policy.endpoints
    metadata: dict[str, object] = {
        "issuer": policy.issuer,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "jwks_uri": endpoints.jwks,
        "revocation_endpoint": endpoints.revoke,
        "introspection_endpoint": endpoints.introspect,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": endpoints.userinfo,
        "end_session_endpoint": endpoints.logout,
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "claims_supported": CLAIMS,
        "claims_parameter_supported": False,
        "acr_values_supported": list(ACR_VALUES_SUPPORTED),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "grant_types_supported": sorted(grant_types),
    }
    if policy.client_metadata_documents:
        # draft-ietf-oauth-client-id-metadata-document; only when the server resolves them
        metadata["client_id_metadata_document_supported"] = True
    if endpoints.registration:  # RFC 7591, only when registration is not off
        metadata["registration_endpoint"] = endpoints.registration
    return metadata
