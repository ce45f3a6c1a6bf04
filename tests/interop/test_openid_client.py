"""panva's ``openid-client`` (a certified OpenID Connect relying party, npm) against a live
``tokensmith serve``, driven through the small scripts of ``node/``.

openid-client does its own checks: the discovery document's ``issuer``, ``state`` and RFC 9207
``iss`` of the authorization response, PKCE, and the id_token (signature through ``jwks_uri``,
``iss``, ``aud``, ``exp``, ``iat``, ``nonce``); userinfo's ``sub`` must match the id_token's.
The test plays the person: it follows the authorization URL the script built, submits the login
and consent forms, and hands the callback URL back to the script.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop.conftest import API, CALLBACK, Person, run_node, verify_access_token
from tests.live import LiveServer, query_of

pytestmark = [pytest.mark.node, pytest.mark.slow]

LOGOUT_RETURN = "http://127.0.0.1:9/signed-out"


async def login(
    live: LiveServer,
    node: str,
    client: dict[str, Any],
    person: Person,
    *,
    scope: str,
    auth: str = "client_secret_basic",
    refreshes: int = 0,
    revoke: bool = False,
    post_logout_redirect_uri: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``login.mjs`` through a browser sign-in; the script's two outputs."""
    options = {
        "issuer": live.issuer,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "auth": auth,
        "redirect_uri": CALLBACK,
        "scope": scope,
        "refreshes": refreshes,
        "revoke": revoke,
        "post_logout_redirect_uri": post_logout_redirect_uri,
    }
    async with run_node(node, "login.mjs", options) as script, live.browser() as ua:
        start = await script.read()
        callback = await live.sign_in(ua, start["authorization_url"], username=person.username)
        assert callback.startswith(CALLBACK + "?"), callback
        assert query_of(callback)["iss"] == live.issuer
        await script.send(callback)
        result = await script.read()
        if "end_session_url" in result:
            result["logout"] = await ua.get(result["end_session_url"])
            result["after_logout"] = await ua.get(start["authorization_url"])
    return start, result


async def test_code_flow_with_pkce_id_token_and_userinfo(
    live: LiveServer, node: str, alice: Person
) -> None:
    client = live.create_client(
        "openid-client RP",
        scopes=("openid", "profile", "email", "docs:read"),
        redirect_uris=(CALLBACK,),
        post_logout_redirect_uris=(LOGOUT_RETURN,),
        api=API,
    )
    start, result = await login(
        live,
        node,
        client,
        alice,
        scope="openid profile email docs:read",
        post_logout_redirect_uri=LOGOUT_RETURN,
    )

    query = query_of(start["authorization_url"])
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"] == start["nonce"]

    tokens = result["tokens"]
    claims = tokens["claims"]
    assert claims["iss"] == live.issuer
    assert claims["sub"] == alice.id
    assert claims["aud"] == client["client_id"]
    assert claims["nonce"] == start["nonce"]
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]
    assert tokens["token_type"].lower() == "bearer"
    assert set(tokens["scope"].split()) == {"openid", "profile", "email", "docs:read"}
    assert tokens["refresh_token"] is None  # no offline_access, no refresh grant

    assert result["userinfo"] == {
        "sub": alice.id,
        "preferred_username": "alice",
        "name": alice.name,
        "email": alice.email,
        "email_verified": True,
        "updated_at": result["userinfo"]["updated_at"],
    }
    access = await verify_access_token(live, tokens["access_token"])
    assert access["sub"] == alice.id
    assert access["client_id"] == client["client_id"]

    # RP-initiated logout with the URL openid-client built (id_token_hint, state): back to the
    # registered post-logout URI with the state, and the SSO session is over.
    logout = result["logout"]
    assert logout.status_code in (302, 303), logout.text[:500]
    assert logout.headers["location"] == f"{LOGOUT_RETURN}?state=bye"
    after = result["after_logout"]
    assert after.status_code == 302
    assert after.headers["location"].startswith("/login?"), after.headers["location"]


async def test_public_client_login(live: LiveServer, node: str, alice: Person) -> None:
    client = live.create_client(
        "openid-client SPA",
        public=True,
        scopes=("openid", "email"),
        redirect_uris=(CALLBACK,),
    )
    assert client["client_secret"] is None
    assert client["token_endpoint_auth_method"] == "none"
    _, result = await login(live, node, client, alice, scope="openid email", auth="none")

    assert result["tokens"]["claims"]["sub"] == alice.id
    assert result["tokens"]["claims"]["aud"] == client["client_id"]
    assert result["userinfo"] == {
        "sub": alice.id,
        "email": alice.email,
        "email_verified": True,
    }


async def test_refresh_token_rotation(live: LiveServer, node: str, alice: Person) -> None:
    client = live.create_client(
        "openid-client offline",
        grants=("authorization_code", "refresh_token"),
        scopes=("openid", "offline_access", "docs:read"),
        redirect_uris=(CALLBACK,),
        api=API,
    )
    _, result = await login(
        live, node, client, alice, scope="openid offline_access docs:read", refreshes=2
    )

    first = result["tokens"]
    refreshes = result["refreshes"]
    assert len(refreshes) == 2
    chain = [first["refresh_token"]] + [r["refresh_token"] for r in refreshes]
    assert all(token and token.startswith("ts_rt_") for token in chain), chain
    assert len(set(chain)) == 3, "every refresh rotates the refresh token"
    for refreshed in refreshes:
        assert refreshed["access_token"] != first["access_token"]
        assert set(refreshed["scope"].split()) == {"openid", "offline_access", "docs:read"}
        access = await verify_access_token(live, refreshed["access_token"])
        assert access["sub"] == alice.id
        if refreshed["claims"] is not None:  # an id_token on refresh was checked by the RP
            # OpenID Connect Core §12.2: same iss, sub, aud; auth_time of the original login.
            for claim in ("iss", "sub", "aud", "auth_time"):
                assert refreshed["claims"][claim] == first["claims"][claim], claim

    # The first refresh token was rotated away: replaying it fails and revokes the family, so
    # the newest one fails too.
    assert result["replayed_first"] is not None, "a rotated refresh token was accepted"
    assert result["replayed_first"]["error"] == "invalid_grant", result["replayed_first"]
    assert result["replayed_last"] is not None, "the family survived a replay"
    assert result["replayed_last"]["error"] == "invalid_grant", result["replayed_last"]


async def test_introspection_and_revocation(live: LiveServer, node: str, alice: Person) -> None:
    client = live.create_client(
        "openid-client revoking",
        grants=("authorization_code", "refresh_token"),
        scopes=("openid", "offline_access", "docs:read"),
        redirect_uris=(CALLBACK,),
        api=API,
    )
    _, result = await login(
        live, node, client, alice, scope="openid offline_access docs:read", revoke=True
    )

    active = result["introspected"]
    assert active["active"] is True
    assert active["client_id"] == client["client_id"]
    assert active["sub"] == alice.id
    assert active["iss"] == live.issuer
    assert set(active["scope"].split()) == {"openid", "offline_access", "docs:read"}
    assert result["introspected_revoked"] == {"active": False}
    assert result["userinfo_revoked"]["status"] == 401, result["userinfo_revoked"]
    challenge = result["userinfo_revoked"]["cause"][0]
    assert challenge["scheme"] == "bearer"
    assert challenge["parameters"]["error"] == "invalid_token"
    assert result["refresh_revoked"]["error"] == "invalid_grant", result["refresh_revoked"]


async def test_client_credentials(live: LiveServer, node: str) -> None:
    client = live.create_client(
        "openid-client M2M",
        grants=("client_credentials",),
        scopes=("docs:read",),
        api=API,
        auth_method="client_secret_post",
    )
    options = {
        "issuer": live.issuer,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "auth": "client_secret_post",
        "discovery": "oauth2",  # the RFC 8414 document this time
        "scope": "docs:read",
        "bad_scope": "docs:write",
    }
    async with run_node(node, "client_credentials.mjs", options) as script:
        result = await script.read()

    tokens = result["tokens"]
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"] is None
    assert tokens["id_token"] is None
    assert tokens["scope"] == "docs:read"
    claims = await verify_access_token(live, tokens["access_token"])
    assert claims["sub"] == client["client_id"]
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "docs:read"
    assert result["refused"]["error"] == "invalid_scope", result["refused"]
