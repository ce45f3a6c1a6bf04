"""Authorization server metadata (RFC 8414) and the JWKS (RFC 7517) through HTTP.

The metadata advertises only what is implemented (RFC 9700 §2.1.1/§2.6: BCP-09, BCP-12, BCP-14,
BCP-21, BCP-24; OAuth 2.1 O21-30, O21-34); the JWKS carries public keys only
(conformance ``EnsureJwksHasNoPrivateOrSymmetricKeyMaterial``).
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from tests.server.harness import ServerEnv

WELL_KNOWN = "/.well-known/oauth-authorization-server"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


async def get_json(env: ServerEnv, path: str, **headers: str) -> tuple[httpx.Response, Any]:
    response = await env.browser().get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response, response.json()


async def test_issuer_is_exact(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta["issuer"] == "https://as.test"
    assert meta["issuer"] == env.settings.issuer


async def test_endpoints_are_https_urls_under_the_issuer_o21_34(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta["authorization_endpoint"] == "https://as.test/authorize"
    assert meta["token_endpoint"] == "https://as.test/token"
    assert meta["jwks_uri"] == "https://as.test/jwks.json"
    for name, value in meta.items():
        if name.endswith(("_endpoint", "_uri")):
            assert value.startswith("https://as.test/"), (name, value)


async def test_advertises_code_flow_only_bcp14(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta["response_types_supported"] == ["code"]
    assert not any("token" in rt for rt in meta["response_types_supported"])
    assert meta.get("response_modes_supported", ["query"]) == ["query"]


async def test_advertises_s256_only_bcp12(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta["code_challenge_methods_supported"] == ["S256"]


async def test_no_password_or_implicit_grant_bcp21(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    grants = meta["grant_types_supported"]
    assert "authorization_code" in grants
    assert "password" not in grants
    assert "implicit" not in grants


async def test_advertises_iss_parameter_o21_30(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta["authorization_response_iss_parameter_supported"] is True


async def test_advertised_auth_methods_are_real(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    methods = set(meta["token_endpoint_auth_methods_supported"])
    assert {"client_secret_basic", "client_secret_post", "none"} <= methods
    assert "client_secret_jwt" not in methods  # symmetric assertions are not implemented


async def test_request_objects_not_advertised(server_env: ServerEnv) -> None:
    env = server_env
    _, meta = await get_json(env, WELL_KNOWN)
    assert meta.get("request_parameter_supported", False) is False
    assert meta.get("request_uri_parameter_supported", False) is False


async def test_host_header_does_not_change_issuer_w46(server_env: ServerEnv) -> None:
    env = server_env
    _, plain = await get_json(env, WELL_KNOWN)
    for headers in (
        {"host": "evil.example"},
        {"x-forwarded-host": "evil.example", "x-forwarded-proto": "http"},
        {"forwarded": "host=evil.example;proto=http"},
    ):
        _, meta = await get_json(env, WELL_KNOWN, **headers)
        assert meta == plain


async def test_jwks_has_public_keys_only(server_env: ServerEnv) -> None:
    env = server_env
    _, jwks = await get_json(env, "/jwks.json")
    keys = jwks["keys"]
    assert keys
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))
    for key in keys:
        assert not (PRIVATE_MEMBERS & set(key)), key
        assert key["kty"] in ("EC", "OKP", "RSA")
        assert key.get("use", "sig") == "sig"
    es256 = [k for k in keys if k.get("alg") == "ES256"]
    assert es256
    assert es256[0]["kty"] == "EC"
    assert es256[0]["crv"] == "P-256"


async def test_jwks_key_verifies_issued_tokens(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    await env.user()
    flow = await env.authorize(env.browser(), client)
    token = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
    _, jwks = await get_json(env, "/jwks.json")
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    key = jwt.PyJWK.from_dict(jwk)
    claims = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience="https://api.clouddocs.test",
        issuer=env.settings.issuer,
    )
    assert claims["client_id"] == client.client.client_id


async def test_jwks_and_metadata_cacheable_and_no_cookies(server_env: ServerEnv) -> None:
    env = server_env
    for path in (WELL_KNOWN, "/jwks.json"):
        response, _ = await get_json(env, path)
        assert "set-cookie" not in response.headers
        assert "max-age" in response.headers["cache-control"]
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_metadata_is_not_cross_origin_credentialed(server_env: ServerEnv) -> None:
    """BCP-26: metadata/JWKS may allow CORS, but never with credentials for any origin."""
    env = server_env
    for path in (WELL_KNOWN, "/jwks.json"):
        response, _ = await get_json(env, path, origin="https://evil.example")
        if "access-control-allow-origin" in response.headers:
            assert "access-control-allow-credentials" not in response.headers
