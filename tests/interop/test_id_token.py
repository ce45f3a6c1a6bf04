"""ID tokens of a live ``tokensmith serve`` validated independently of tokensmith's code: PyJWT
and the published ``/jwks.json`` (OpenID Connect Core §3.1.3.7): signature (RS256 by default,
ES256 and EdDSA per client), ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``at_hash``
recomputed from the access token (§3.1.3.8), and ``auth_time``, also under ``max_age`` with an
existing SSO session.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from tests.interop.conftest import CALLBACK, Person, jwks
from tests.live import LiveServer, query_of
from tests.server.harness import pkce_pair

SCOPE = "openid profile email"

pytestmark = pytest.mark.slow


def expected_at_hash(access_token: str, alg: str) -> str:
    """OpenID Connect Core §3.1.3.6: the left half of the hash of the ASCII access token, with
    the hash of the JWS algorithm (SHA-256 for RS256/ES256; SHA-512 for EdDSA on Ed25519)."""
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


async def authorize(
    live: LiveServer,
    ua: httpx.AsyncClient,
    client: dict[str, Any],
    person: Person,
    pages: list[str] | None = None,
    **extra: str,
) -> tuple[dict[str, Any], str]:
    """A code + PKCE OpenID request through the browser ``ua``; the token response and the
    nonce that was sent."""
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(16)
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    callback = await live.sign_in(
        ua, live.url("/authorize?" + urlencode(params)), username=person.username, pages=pages
    )
    result = query_of(callback)
    assert result["state"] == state, callback
    response = await ua.post(
        live.url("/token"),
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    return response.json(), nonce


async def validate_id_token(
    live: LiveServer, tokens: dict[str, Any], *, client_id: str, nonce: str, alg: str
) -> dict[str, Any]:
    id_token = tokens["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == alg, header
    assert header.get("typ", "JWT") == "JWT", header
    key = (await jwks(live))[header["kid"]]
    assert key.algorithm_name == alg
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key,
        algorithms=[alg],
        audience=client_id,
        issuer=live.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"]},
    )
    assert claims["nonce"] == nonce
    assert claims["at_hash"] == expected_at_hash(tokens["access_token"], alg)
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]
    if "azp" in claims:
        assert claims["azp"] == client_id
    return claims


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_id_token_validates_independently(live: LiveServer, alice: Person, alg: str) -> None:
    client = live.create_client(
        f"ID token {alg}",
        scopes=("openid", "profile", "email"),
        redirect_uris=(CALLBACK,),
        id_token_alg=None if alg == "RS256" else alg,  # RS256 is the default
    )
    before = math.floor(time.time())
    async with live.browser() as ua:
        tokens, nonce = await authorize(live, ua, client, alice)
    after = math.ceil(time.time())

    claims = await validate_id_token(
        live, tokens, client_id=client["client_id"], nonce=nonce, alg=alg
    )
    assert claims["sub"] == alice.id
    assert before <= claims["auth_time"] <= after
    assert before <= claims["iat"] <= after

    # The same checks refuse a token that was altered or meant for someone else.
    key = (await jwks(live))[jwt.get_unverified_header(tokens["id_token"])["kid"]]
    head, body, signature = tokens["id_token"].split(".")
    forged_body = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(body + "==").replace(alice.id.encode(), b"x" * len(alice.id))
    )
    forged = f"{head}.{forged_body.rstrip(b'=').decode()}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=[alg], audience=client["client_id"])
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(tokens["id_token"], key, algorithms=[alg], audience="someone-else")


async def test_auth_time_with_max_age_and_sso(live: LiveServer, alice: Person) -> None:
    """A second request with ``max_age`` within the SSO session needs no login; its ID token
    carries the first login's ``auth_time`` (OpenID Connect Core §3.1.2.1, §2)."""
    client = live.create_client(
        "ID token max_age", scopes=("openid", "profile", "email"), redirect_uris=(CALLBACK,)
    )
    first_pages: list[str] = []
    again_pages: list[str] = []
    async with live.browser() as ua:
        first, nonce = await authorize(live, ua, client, alice, pages=first_pages)
        claims = await validate_id_token(
            live, first, client_id=client["client_id"], nonce=nonce, alg="RS256"
        )
        again, nonce_again = await authorize(
            live, ua, client, alice, pages=again_pages, max_age="3600"
        )
    assert first_pages == ["/login", "/consent"]
    assert again_pages == [], "a login within max_age and a remembered consent show no page"
    claims_again = await validate_id_token(
        live, again, client_id=client["client_id"], nonce=nonce_again, alg="RS256"
    )
    assert nonce_again != nonce
    assert claims_again["sub"] == claims["sub"] == alice.id
    assert claims_again["auth_time"] == claims["auth_time"]
    assert claims_again["sid"] == claims["sid"]
