"""An OpenID Connect client, a login through the code flow, and the checks every ID token must
pass (OpenID Connect Core §3.1.3.7)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import httpx
import jwt

from tests.server.harness import ServerEnv
from tokensmith.core.registration import NewClient

OIDC_SCOPES = ["openid", "profile", "email", "offline_access", "docs:read"]


async def oidc_client(env: ServerEnv, **kwargs: Any) -> NewClient:
    defaults: dict[str, Any] = {
        "name": "CloudDocs",
        "scopes": OIDC_SCOPES,
        "grant_types": ["authorization_code", "refresh_token"],
        "post_logout_redirect_uris": ["https://rp.test/bye"],
    }
    defaults.update(kwargs)
    return await env.client(**defaults)


async def login(
    env: ServerEnv, client: NewClient, ua: httpx.AsyncClient | None = None, **params: str | None
) -> dict[str, Any]:
    params.setdefault("scope", "openid profile email")
    params.setdefault("nonce", "n-0S6_WzA2Mj")
    flow = await env.authorize(ua or env.browser(), client, **params)
    assert flow.response.status_code in (302, 303), flow.response.text
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["_nonce"] = params["nonce"]
    return body


def left_half_hash(value: str, alg: str) -> str:
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


async def verify_id_token(
    env: ServerEnv, client: NewClient, body: dict[str, Any], *, alg: str = "RS256"
) -> dict[str, Any]:
    token = body["id_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg
    key = (await env.jwks())[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[alg],
        audience=client.client.client_id,
        issuer=env.settings.issuer,
        leeway=abs(env.clock() - time.time()) + 5,  # the server's clock is a test clock
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time"]},
    )
    assert claims["at_hash"] == left_half_hash(body["access_token"], alg)
    if body.get("_nonce") is not None:
        assert claims["nonce"] == body["_nonce"]
    return claims
