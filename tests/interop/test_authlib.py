"""Authlib's ``AsyncOAuth2Client`` (httpx) against a live ``tokensmith serve``: client
credentials, and an authorization code + PKCE login followed by refresh-token rotation through
``refresh_token()``. Endpoints come from the RFC 8414 metadata document; every access token is
verified independently with PyJWT against ``/jwks.json``.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token

from tests.interop.conftest import API, API_SCOPES, CALLBACK, Person, verify_access_token
from tests.live import LiveServer, query_of

with warnings.catch_warnings():
    # Authlib >= 1.9 warns on import when the httpx2 package is absent and it falls back to
    # httpx, which is the HTTP client this project uses. Its own "always" filter comes first.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def metadata(live: LiveServer) -> dict[str, Any]:
    with httpx.Client(timeout=10.0) as http:
        response = http.get(live.url("/.well-known/oauth-authorization-server"))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert document["issuer"] == live.issuer
    return document


@pytest.fixture
async def oauth_clients() -> AsyncIterator[list[AsyncOAuth2Client]]:
    """Authlib clients a test opens, closed at the end."""
    opened: list[AsyncOAuth2Client] = []
    yield opened
    for client in opened:
        await client.aclose()


async def test_client_credentials(
    live: LiveServer, metadata: dict[str, Any], oauth_clients: list[AsyncOAuth2Client]
) -> None:
    registered = live.create_client(
        "Authlib M2M", grants=("client_credentials",), scopes=API_SCOPES, api=API
    )
    oauth = AsyncOAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        timeout=10.0,
    )
    oauth_clients.append(oauth)

    token = await oauth.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="docs:read"
    )
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "docs:read"
    assert "refresh_token" not in token
    claims = await verify_access_token(live, token["access_token"])
    assert claims["sub"] == registered["client_id"]
    assert claims["client_id"] == registered["client_id"]
    assert claims["scope"] == "docs:read"
    assert claims["exp"] - claims["iat"] == token["expires_in"]

    # Without a scope: the client's allowed scopes.
    token = await oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert set(token["scope"].split()) == set(API_SCOPES)

    with pytest.raises(OAuthError) as refused:
        await oauth.fetch_token(
            metadata["token_endpoint"], grant_type="client_credentials", scope="docs:admin"
        )
    assert refused.value.error == "invalid_scope"

    wrong = AsyncOAuth2Client(registered["client_id"], "ts_cs_not-the-secret", timeout=10.0)
    oauth_clients.append(wrong)
    with pytest.raises(OAuthError) as refused:
        await wrong.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


async def test_refresh_token_rotation(
    live: LiveServer,
    metadata: dict[str, Any],
    alice: Person,
    oauth_clients: list[AsyncOAuth2Client],
) -> None:
    registered = live.create_client(
        "Authlib web app",
        grants=("authorization_code", "refresh_token"),
        scopes=API_SCOPES,
        redirect_uris=(CALLBACK,),
        api=API,
    )
    oauth = AsyncOAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        redirect_uri=CALLBACK,
        scope="docs:read docs:write",
        code_challenge_method="S256",
        timeout=10.0,
    )
    oauth_clients.append(oauth)
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    assert query_of(url)["code_challenge_method"] == "S256"
    async with live.browser() as ua:
        callback = await live.sign_in(ua, url, username=alice.username)
    assert query_of(callback)["iss"] == live.issuer

    endpoint = metadata["token_endpoint"]
    first = await oauth.fetch_token(
        endpoint, authorization_response=callback, code_verifier=verifier, state=state
    )
    assert (await verify_access_token(live, first["access_token"]))["sub"] == alice.id
    assert "id_token" not in first  # not an OpenID request

    second = await oauth.refresh_token(endpoint, refresh_token=first["refresh_token"])
    third = await oauth.refresh_token(
        endpoint, refresh_token=second["refresh_token"], scope="docs:read"
    )
    chain = [first["refresh_token"], second["refresh_token"], third["refresh_token"]]
    assert len(set(chain)) == 3, "every refresh rotates the refresh token"
    assert set(second["scope"].split()) == {"docs:read", "docs:write"}
    assert third["scope"] == "docs:read"  # scope may narrow on refresh
    for token in (second, third):
        claims = await verify_access_token(live, token["access_token"])
        assert claims["sub"] == alice.id
        assert claims["client_id"] == registered["client_id"]
        assert claims["scope"] == token["scope"]

    # A rotated refresh token is dead, and replaying it revokes the family: the newest too.
    with pytest.raises(OAuthError) as replayed:
        await oauth.refresh_token(endpoint, refresh_token=first["refresh_token"])
    assert replayed.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as revoked:
        await oauth.refresh_token(endpoint, refresh_token=third["refresh_token"])
    assert revoked.value.error == "invalid_grant"
