"""A client that authenticates with private_key_jwt (RFC 7523): its key pair, its registration,
its signed assertions and a client-credentials request carrying one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.server.harness import ServerEnv
from tokensmith.core.registration import NewClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class KeyPair:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**jwk, "kid": "client-key-1", "use": "sig"}

    def jwks(self) -> str:
        return json.dumps({"keys": [self.jwk]})


async def pkjwt_client(env: ServerEnv, keys: KeyPair) -> NewClient:
    return await env.client(
        name="Signed worker",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["docs:read"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=keys.jwks(),
    )


def assertion(env: ServerEnv, client: NewClient, keys: KeyPair, **overrides: Any) -> str:
    now = int(env.clock())
    claims: dict[str, Any] = {
        "iss": client.client.client_id,
        "sub": client.client.client_id,
        "aud": env.settings.issuer + env.settings.token_path,
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": overrides.pop("kid", "client-key-1")}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, keys.private, algorithm="ES256", headers=headers)


async def post(env: ServerEnv, client_assertion: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **extra,
    }
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        return await c.post(env.settings.token_path, data=form)
