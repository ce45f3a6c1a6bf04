"""A real third-party client against a real ``tokensmith serve`` (issue 2, "Done when").

Authlib's httpx ``OAuth2Client`` performs the authorization code + PKCE login against a
``tokensmith serve`` subprocess on a free 127.0.0.1 port with its own SQLite file; the API, the
clients and the user are registered through the ``tokensmith ... --json`` CLI; the test submits
the login and consent forms over HTTP like a person would; the access token is verified with
PyJWT's ``PyJWKClient`` against ``/jwks.json``. (``tests/interop/test_authlib.py`` covers the
async client with refresh tokens; this module covers the synchronous client, the consent page,
``client_secret_post``, a public client and a denied consent.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.common.security import generate_token

from tests.live import LiveServer, live_server, query_of

with warnings.catch_warnings():
    # Authlib >= 1.9 warns on import when the httpx2 package is absent and it falls back to
    # httpx, which is the HTTP client this project uses.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

API = "https://api.authlib-sync.test"
CALLBACK = "http://127.0.0.1:9/cb"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("authlib-sync"))) as live:
        live.create_api(API, ("docs:read", "docs:write"))
        live.create_user("alice", email="alice@example.com")
        yield live


@pytest.fixture(scope="module")
def metadata(server: LiveServer) -> dict[str, Any]:
    with httpx.Client(timeout=10.0) as http:
        response = http.get(server.url("/.well-known/oauth-authorization-server"))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert document["issuer"] == server.issuer
    assert "S256" in document["code_challenge_methods_supported"]
    return document


def verify_with_jwks(server: LiveServer, token: str) -> dict[str, Any]:
    """Verify an access token the way an independent resource server would."""
    jwks_client = jwt.PyJWKClient(server.url("/jwks.json"), cache_keys=False, timeout=10)
    key = jwks_client.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=API,
        issuer=server.issuer,
        options={"require": ["exp", "iat", "sub", "jti", "client_id", "scope"]},
    )
    return claims


async def login(
    server: LiveServer, oauth: OAuth2Client, metadata: dict[str, Any], *, decision: str = "allow"
) -> tuple[str, str, str, list[str]]:
    """Authorization URL from Authlib, login and consent by HTTP; (callback, state, verifier,
    pages shown)."""
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    sent = query_of(url)
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    pages: list[str] = []
    async with server.browser() as ua:
        callback = await server.sign_in(ua, url, username="alice", decision=decision, pages=pages)
    assert callback.startswith(CALLBACK + "?")
    return callback, state, verifier, pages


@pytest.mark.slow
async def test_sync_oauth2_client_code_pkce_with_consent(
    server: LiveServer, metadata: dict[str, Any]
) -> None:
    registered = server.create_client(
        "Authlib sync web app",
        scopes=("docs:read", "docs:write"),
        redirect_uris=(CALLBACK,),
        api=API,
    )
    user = server.cli("users", "list")[0]
    with OAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        redirect_uri=CALLBACK,
        scope="docs:read",
        code_challenge_method="S256",
        timeout=10.0,
    ) as oauth:
        callback, state, verifier, pages = await login(server, oauth, metadata)
        assert pages == ["/login", "/consent"]
        result = query_of(callback)
        assert result["state"] == state
        assert result["iss"] == server.issuer
        token = oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "docs:read"
        claims = verify_with_jwks(server, token["access_token"])
        assert claims["sub"] == user["id"]
        assert claims["client_id"] == registered["client_id"]
        assert claims["scope"] == "docs:read"
        assert claims["exp"] - claims["iat"] == token["expires_in"] == 600

        # The code is single-use, also for a well-behaved client library.
        with pytest.raises(OAuthError) as replayed:
            oauth.fetch_token(
                metadata["token_endpoint"],
                authorization_response=callback,
                code_verifier=verifier,
                state=state,
            )
        assert replayed.value.error == "invalid_grant"

        # Consent is remembered: the second login shows no consent page.
        _, _, _, pages = await login(server, oauth, metadata)
        assert pages == ["/login"]


@pytest.mark.slow
async def test_sync_oauth2_client_secret_post(server: LiveServer, metadata: dict[str, Any]) -> None:
    registered = server.create_client(
        "Authlib post client",
        scopes=("docs:read",),
        redirect_uris=(CALLBACK,),
        api=API,
        first_party=True,
        auth_method="client_secret_post",
    )
    with OAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        redirect_uri=CALLBACK,
        scope="docs:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
        timeout=10.0,
    ) as oauth:
        callback, state, verifier, pages = await login(server, oauth, metadata)
        assert pages == ["/login"]  # first-party: no consent page
        token = oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert verify_with_jwks(server, token["access_token"])["scope"] == "docs:read"


@pytest.mark.slow
async def test_sync_oauth2_public_client(server: LiveServer, metadata: dict[str, Any]) -> None:
    registered = server.create_client(
        "Authlib public app",
        scopes=("docs:read",),
        redirect_uris=(CALLBACK,),
        api=API,
        public=True,
    )
    assert registered["client_secret"] is None
    with OAuth2Client(
        registered["client_id"],
        redirect_uri=CALLBACK,
        scope="docs:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        timeout=10.0,
    ) as oauth:
        callback, state, verifier, _ = await login(server, oauth, metadata)
        # Without the verifier the code is useless (and burnt).
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(
                metadata["token_endpoint"],
                authorization_response=callback,
                code_verifier=generate_token(64),
                state=state,
            )
        assert refused.value.error == "invalid_grant"
        callback, state, verifier, _ = await login(server, oauth, metadata)
        token = oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert (
            verify_with_jwks(server, token["access_token"])["client_id"]
            == (registered["client_id"])
        )


@pytest.mark.slow
async def test_sync_oauth2_client_denied_consent(
    server: LiveServer, metadata: dict[str, Any]
) -> None:
    registered = server.create_client(
        "Authlib denied app", scopes=("docs:write",), redirect_uris=(CALLBACK,), api=API
    )
    with OAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        redirect_uri=CALLBACK,
        scope="docs:write",
        code_challenge_method="S256",
        timeout=10.0,
    ) as oauth:
        callback, state, _, pages = await login(server, oauth, metadata, decision="deny")
        assert pages == ["/login", "/consent"]
        result = query_of(callback)
        assert result["error"] == "access_denied"
        assert result["state"] == state
        assert result["iss"] == server.issuer
        assert "code" not in result
