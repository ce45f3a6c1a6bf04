"""private_key_jwt client authentication (RFC 7523 §2.2, §3; issue 3; BCP-23)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.server.harness import ServerEnv
from tests.support.private_key_jwt import KeyPair, assertion, pkjwt_client, post
from tokensmith.admin import AdminError


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


async def test_private_key_jwt_authenticates(server_env: ServerEnv) -> None:
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    response = await post(server_env, assertion(server_env, client, keys))
    assert response.status_code == 200, response.text


async def test_issuer_is_an_accepted_audience(server_env: ServerEnv) -> None:
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    token = assertion(server_env, client, keys, aud=server_env.settings.issuer)
    assert (await post(server_env, token)).status_code == 200


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("wrong_audience", {"aud": "https://evil.example/token"}),
        ("expired", {"exp": int(time.time()) - 600}),
        ("lives_too_long", {"exp": int(time.time()) + 3600}),
        ("no_jti", {"jti": None}),
        ("no_exp", {"exp": None}),
        ("iss_differs_from_sub", {"iss": "someone-else"}),
        ("unknown_kid", {"kid": "not-registered"}),
    ],
)
async def test_bad_assertions_are_invalid_client(
    server_env: ServerEnv, case: str, overrides: dict[str, Any]
) -> None:
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    if "exp" in overrides and overrides["exp"] is not None:
        overrides["exp"] = int(server_env.clock()) + (overrides["exp"] - int(time.time()))
    response = await post(server_env, assertion(server_env, client, keys, **overrides))
    assert response.status_code == 401, case
    assert response.json()["error"] == "invalid_client"


async def test_assertion_jti_cannot_be_replayed(server_env: ServerEnv) -> None:
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    token = assertion(server_env, client, keys)
    assert (await post(server_env, token)).status_code == 200
    replay = await post(server_env, token)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


async def test_assertion_signed_by_another_key_is_refused(server_env: ServerEnv) -> None:
    keys, stranger = KeyPair(), KeyPair()
    client = await pkjwt_client(server_env, keys)
    response = await post(server_env, assertion(server_env, client, stranger))
    assert response.status_code == 401


async def test_alg_none_and_hmac_with_the_public_key_are_refused(server_env: ServerEnv) -> None:
    import hashlib
    import hmac

    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    now = int(server_env.clock())
    claims = {
        "iss": client.client.client_id,
        "sub": client.client.client_id,
        "aud": server_env.settings.issuer + server_env.settings.token_path,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    none_token = unsigned({"alg": "none", "kid": "client-key-1"}, claims)
    assert (await post(server_env, none_token)).status_code == 401
    public_pem = keys.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned({"alg": "HS256", "kid": "client-key-1"}, claims).rsplit(".", 1)[0]
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert (await post(server_env, f"{signing_input}.{b64(mac)}")).status_code == 401


async def test_secret_methods_do_not_work_for_a_private_key_jwt_client(
    server_env: ServerEnv,
) -> None:
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    response = await server_env.token(
        client,
        {"grant_type": "client_credentials", "client_id": client.client.client_id},
        auth="raw",
    )
    assert response.status_code == 401


async def test_registration_refuses_private_keys_in_the_jwks(server_env: ServerEnv) -> None:
    keys = KeyPair()
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys.private))
    with pytest.raises(AdminError, match="private key material"):
        await server_env.client(
            name="Leaky",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=["docs:read"],
            token_endpoint_auth_method="private_key_jwt",
            jwks=json.dumps({"keys": [private_jwk]}),
        )


async def test_assertion_with_an_unprintable_sub_is_invalid_client(server_env: ServerEnv) -> None:
    """A NUL in the claimed client id must not reach the database (PostgreSQL refuses it)."""
    keys = KeyPair()
    client = await pkjwt_client(server_env, keys)
    for sub in ("\u0000", "x" * 200):
        token = assertion(server_env, client, keys, sub=sub, iss=sub)
        response = await post(server_env, token)
        assert response.status_code == 401, sub[:5]
        assert response.json()["error"] == "invalid_client"
