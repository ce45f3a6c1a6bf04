"""Round two, "who may get which token for which API": one test per finding of the outside
review, each failing without its fix (``docs/security.md``). The whole model is the table of
``test_authorization_matrix.py``; these tests pin the reported instances and what the table does
not show (consent per API, the consent page's words, the token endpoint's ``resource`` for codes,
refresh tokens presented by other clients)."""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.harness import (
    REDIRECT,
    ServerEnv,
    assert_oauth_error,
    assert_page,
    assert_redirect_error,
    hidden_fields,
)
from tests.support.clients import machine, refresh, resource_server
from tokensmith.admin import AdminError
from tokensmith.core.registration import NewClient

URN_A = "urn:a"
URN_B = "urn:b"


async def two_apis(env: ServerEnv) -> None:
    """The review's setup: two APIs that both define ``docs:read``."""
    await env.admin.create_api(identifier=URN_A, scopes=("docs:read", "docs:write"), name="Docs")
    await env.admin.create_api(identifier=URN_B, scopes=("docs:read",), name="Billing")


def claims_of(token: str) -> dict[str, Any]:
    import jwt

    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- finding 1: a client gets tokens only for its own APIs ----------------------------------------


async def test_client_credentials_for_an_api_not_registered_for_the_client_is_invalid_target(
    server_env: ServerEnv,
) -> None:
    env = server_env
    await two_apis(env)
    machine = await env.admin.create_client(
        name="Machine",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["docs:read"],
        api=URN_A,
    )
    for form in (
        {"resource": URN_B},  # used to give aud=urn:b with an empty scope
        {"resource": URN_B, "scope": "docs:read"},  # used to give urn:b's docs:read
    ):
        response = await env.token(machine, {"grant_type": "client_credentials", **form})
        assert_oauth_error(response, "invalid_target")
    own = await env.token(machine, {"grant_type": "client_credentials", "resource": URN_A})
    assert own.status_code == 200, own.text
    claims = claims_of(own.json()["access_token"])
    assert (claims["aud"], claims["scope"]) == (URN_A, "docs:read")


async def test_authorize_for_an_api_not_registered_for_the_client_is_an_error_redirect(
    server_env: ServerEnv,
) -> None:
    env = server_env
    await two_apis(env)
    web = await env.client(api=URN_A, scopes=["docs:read"])
    await env.user()
    flow = await env.authorize(env.browser(), web, resource=URN_B)
    assert_redirect_error(
        flow.response,
        "invalid_target",
        redirect_uri=REDIRECT,
        state=flow.params["state"],
        issuer=env.settings.issuer,
    )
    # the client and its redirect URI are checked first: an unknown redirect is a page
    bad = await env.start_authorize(
        env.browser(), web, resource=URN_B, redirect_uri="https://evil.example/cb"
    )
    assert_page(bad.response)


async def test_first_party_client_is_bound_to_its_apis(server_env: ServerEnv) -> None:
    env = server_env
    await two_apis(env)
    web = await env.client(api=URN_A, scopes=["docs:read"], first_party=True)
    await env.user()
    flow = await env.authorize(env.browser(), web, resource=URN_B)
    assert flow.result["error"] == "invalid_target"


async def test_consent_is_per_api_and_the_page_names_the_api(server_env: ServerEnv) -> None:
    env = server_env
    await two_apis(env)
    web = await env.client(apis=[URN_A, URN_B], api=None, scopes=["docs:read"])
    await env.user()
    ua = env.browser()
    first = await env.authorize(ua, web, resource=URN_A)
    assert "code" in first.result, first.location
    # docs:read was allowed for Docs (urn:a); Billing's docs:read needs its own consent
    second = await env.start_authorize(ua, web, resource=URN_B)
    assert second.response.status_code == 302
    assert urlsplit(second.location).path == env.settings.consent_path, second.location
    page = await ua.get(second.location)
    text = html.unescape(page.text)
    assert "Billing" in text
    assert text.index("Billing") < text.index(URN_B), "the name comes first, the identifier second"
    assert URN_A not in text
    # allowing it issues a code for urn:b; asking again needs no consent for either API
    response = await ua.post(
        env.settings.consent_path, data={**hidden_fields(page.text), "decision": "allow"}
    )
    code_b = await env.login(ua, response)
    assert "code=" in code_b.headers["location"]
    for resource in (URN_A, URN_B):
        again = await env.start_authorize(ua, web, resource=resource)
        assert "code" in again.result, (resource, again.location)


async def test_code_exchange_with_another_resource_is_invalid_target(
    server_env: ServerEnv,
) -> None:
    env = server_env
    await two_apis(env)
    await env.admin.create_api(identifier="urn:c", scopes=("docs:read",))
    web = await env.client(apis=[URN_A, URN_B], api=None, scopes=["docs:read"])
    await env.user()
    flow = await env.authorize(env.browser(), web, resource=URN_A)
    # a resource the client may not use at all: refused before the code is touched
    refused = await env.redeem(web, flow.code, flow.verifier, resource="urn:c")
    assert_oauth_error(refused, "invalid_target")
    # one of its APIs, but not the code's: refused (and the code is burnt, like any misuse)
    other = await env.redeem(web, flow.code, flow.verifier, resource=URN_B)
    assert_oauth_error(other, "invalid_target")
    burnt = await env.redeem(web, flow.code, flow.verifier)
    assert_oauth_error(burnt, "invalid_grant")
    # the code's own resource is accepted
    flow = await env.authorize(env.browser(), web, resource=URN_A)
    ok = await env.redeem(web, flow.code, flow.verifier, resource=URN_A)
    assert ok.status_code == 200, ok.text
    assert claims_of(ok.json()["access_token"])["aud"] == URN_A


async def test_refresh_for_an_api_the_client_lost_is_invalid_target(
    server_env: ServerEnv,
) -> None:
    """The refresh's own check, behind the revocation of ``clients update --remove-api``
    (``test_an_api_removed_from_a_client_and_given_back_...``): a live grant for an API its
    client no longer has (written before removals revoked, or racing one) gets no token."""
    env = server_env
    await two_apis(env)
    web = await env.client(
        api=None,
        apis=[URN_A, URN_B],
        scopes=["docs:read"],
        grant_types=["authorization_code", "refresh_token"],
    )
    await env.user()
    flow = await env.authorize(env.browser(), web)
    body = (await env.redeem(web, flow.code, flow.verifier)).json()
    async with env.admin.db.transaction() as stores:  # the API taken away, its grant left live
        await stores.clients.update(replace(web.client, apis=(URN_B,)), env.admin.now())
    env.clock.advance(env.settings.client_cache_ttl + 1)
    response = await env.token(
        web, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert_oauth_error(response, "invalid_target")


async def test_refresh_holding_a_scope_the_client_lost_gets_no_token(
    server_env: ServerEnv,
) -> None:
    """The refresh's own check, behind the revocation of ``clients update --remove-scope``: a
    live grant holding a scope its client may no longer ask for (racing the removal, or read by
    a server whose cached client was older) gets no token, and the refresh token is not
    spent."""
    env = server_env
    await two_apis(env)
    web = await env.client(
        api=URN_A, scopes=["docs:read", "docs:write"], grant_types=CODE_AND_REFRESH
    )
    await env.user()
    flow = await env.authorize(env.browser(), web, resource=URN_A, scope="docs:read docs:write")
    body = (await env.redeem(web, flow.code, flow.verifier)).json()
    async with env.admin.db.transaction() as stores:  # the scope taken away, the grant left live
        await stores.clients.update(replace(web.client, scopes=("docs:read",)), env.admin.now())
    env.clock.advance(env.settings.client_cache_ttl + 1)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    assert_oauth_error(await env.token(web, form), "invalid_grant")
    assert (await env.introspect(web, body["refresh_token"]))["active"] is True


async def test_an_api_deleted_and_created_again_inherits_no_grant_token_or_consent(
    server_env: ServerEnv,
) -> None:
    """Red team: ``apis delete --force`` revokes what was granted for the API in its own
    transaction, so an API created again under the same identifier (and given back to the
    client) does not revive the old refresh tokens, access tokens and consents."""
    env = server_env
    await two_apis(env)
    web = await env.client(
        api=URN_A, scopes=["docs:read"], grant_types=["authorization_code", "refresh_token"]
    )
    worker = await machine(
        env, api=None, apis=[URN_A, URN_B], access_token_format="opaque", scopes=["docs:read"]
    )
    inspector = await resource_server(env)
    await env.user()
    ua = env.browser()
    flow = await env.authorize(ua, web)  # alice consents
    body = (await env.redeem(web, flow.code, flow.verifier)).json()
    issued = await env.token(
        worker, {"grant_type": "client_credentials", "scope": "docs:read", "resource": URN_A}
    )
    opaque = issued.json()["access_token"]
    assert (await env.introspect(inspector, opaque))["active"] is True

    # refused while a client uses it; --force removes it from the clients too
    with pytest.raises(AdminError, match="used by client"):
        await env.admin.delete_api(URN_A)
    changed = await env.admin.delete_api(URN_A, force=True)
    assert set(changed) == {web.client.client_id, worker.client.client_id}
    await env.admin.create_api(identifier=URN_A, scopes=("docs:read", "docs:write"), name="Docs")
    await env.admin.update_client(
        web.client.client_id, add={"apis": [URN_A], "scopes": ["docs:read"]}
    )
    env.clock.advance(env.settings.client_cache_ttl + 1)

    refreshed = await env.token(
        web, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert_oauth_error(refreshed, "invalid_grant")
    assert (await env.introspect(inspector, opaque))["active"] is False
    again = await env.start_authorize(ua, web)  # signed in still, but asked to consent anew
    assert urlsplit(again.response.headers["location"]).path == env.settings.consent_path


CODE_AND_REFRESH = ["authorization_code", "refresh_token"]


async def tokens_for(
    env: ServerEnv, ua: Any, client: NewClient, resource: str, scope: str = "docs:read"
) -> dict[str, Any]:
    """alice's tokens from one authorization of ``client`` for ``resource`` (one grant)."""
    flow = await env.authorize(ua, client, resource=resource, scope=scope)
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_credentials(env: ServerEnv, client: NewClient, **form: str) -> str:
    response = await env.token(client, {"grant_type": "client_credentials", **form})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_an_api_removed_from_a_client_and_given_back_revives_no_grant_token_or_consent(
    server_env: ServerEnv,
) -> None:
    """Red team: ``clients update --remove-api`` (or a replaced list of APIs) revokes, in the
    update's transaction, that client's grants for the API (so their refresh tokens) and its
    recorded access tokens for it, and withdraws its users' consents for it: given back, the
    API revives none of them. The client's grants for the APIs it keeps, and other clients'
    grants for the removed API, keep working."""
    env = server_env
    await two_apis(env)
    web = await env.client(
        api=None,
        apis=[URN_A, URN_B],
        scopes=["docs:read"],
        grant_types=CODE_AND_REFRESH,
        access_token_format="opaque",
    )
    peer = await env.client(
        name="Peer",
        api=URN_A,
        scopes=["docs:read"],
        grant_types=CODE_AND_REFRESH,
        access_token_format="opaque",
    )
    worker = await machine(
        env, api=None, apis=[URN_A, URN_B], access_token_format="opaque", scopes=["docs:read"]
    )
    inspector = await resource_server(env)
    await env.user()
    ua = env.browser()
    lost = await tokens_for(env, ua, web, URN_A)  # alice consents to web for urn:a
    lost_too = await tokens_for(env, ua, web, URN_A)  # a second grant, kept unused
    kept = await tokens_for(env, ua, web, URN_B)  # and for urn:b
    peers = await tokens_for(env, ua, peer, URN_A)
    machine_a = await client_credentials(env, worker, resource=URN_A)
    machine_b = await client_credentials(env, worker, resource=URN_B)

    await env.admin.update_client(web.client.client_id, remove={"apis": [URN_A]})
    await env.admin.update_client(worker.client.client_id, changes={"apis": [URN_B]})

    # at once, though the server's cached client still has urn:a: the grant is read from the
    # database at refresh, the token records at introspection
    assert_oauth_error(await refresh(env, web, lost["refresh_token"]), "invalid_grant")
    assert (await env.introspect(inspector, lost["access_token"]))["active"] is False
    assert (await env.introspect(inspector, machine_a))["active"] is False
    # what the client keeps, and another client's grant for urn:a, are untouched
    assert (await env.introspect(inspector, machine_b))["active"] is True
    for client, body in ((web, kept), (peer, peers)):
        assert (await env.introspect(inspector, body["access_token"]))["active"] is True
        refreshed = await refresh(env, client, body["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text

    # given back, urn:a revives no refresh token and no consent
    await env.admin.update_client(web.client.client_id, add={"apis": [URN_A]})
    env.clock.advance(env.settings.client_cache_ttl + 1)
    assert (await env.introspect(web, lost_too["refresh_token"]))["active"] is False
    assert_oauth_error(await refresh(env, web, lost_too["refresh_token"]), "invalid_grant")
    again = await env.start_authorize(ua, web, resource=URN_A)  # signed in, asked anew
    assert urlsplit(again.location).path == env.settings.consent_path, again.location
    still = await env.start_authorize(ua, web, resource=URN_B)  # consent for urn:b kept
    assert "code" in still.result, still.location


async def test_a_scope_removed_from_a_client_and_given_back_revives_no_grant_token_or_consent(
    server_env: ServerEnv,
) -> None:
    """Red team: a grant holding a scope its client lost kept refreshing with that scope. Now
    ``clients update --remove-scope`` (or a replaced list of scopes) revokes the client's grants
    that hold it, whole, and its recorded access tokens whose scope holds it, and withdraws its
    users' consents to that scope; its grants without the scope and other clients' keep
    working."""
    env = server_env
    await two_apis(env)
    both = ["docs:read", "docs:write"]
    web = await env.client(
        api=URN_A, scopes=both, grant_types=CODE_AND_REFRESH, access_token_format="opaque"
    )
    peer = await env.client(
        name="Peer",
        api=URN_A,
        scopes=both,
        grant_types=CODE_AND_REFRESH,
        access_token_format="opaque",
    )
    worker = await machine(env, api=URN_A, access_token_format="opaque", scopes=both)
    inspector = await resource_server(env)
    await env.user()
    ua = env.browser()
    reader = await tokens_for(env, ua, web, URN_A)
    writer = await tokens_for(env, ua, web, URN_A, scope="docs:read docs:write")
    writer_too = await tokens_for(env, ua, web, URN_A, scope="docs:read docs:write")
    peers = await tokens_for(env, ua, peer, URN_A, scope="docs:read docs:write")
    machine_write = await client_credentials(env, worker, resource=URN_A, scope="docs:write")
    machine_read = await client_credentials(env, worker, resource=URN_A, scope="docs:read")

    await env.admin.update_client(web.client.client_id, remove={"scopes": ["docs:write"]})
    await env.admin.update_client(worker.client.client_id, changes={"scopes": ["docs:read"]})

    assert_oauth_error(await refresh(env, web, writer["refresh_token"]), "invalid_grant")
    assert (await env.introspect(inspector, writer["access_token"]))["active"] is False
    assert (await env.introspect(inspector, machine_write))["active"] is False
    assert (await env.introspect(inspector, machine_read))["active"] is True
    for client, body in ((web, reader), (peer, peers)):
        assert (await env.introspect(inspector, body["access_token"]))["active"] is True
        refreshed = await refresh(env, client, body["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text

    await env.admin.update_client(web.client.client_id, add={"scopes": ["docs:write"]})
    env.clock.advance(env.settings.client_cache_ttl + 1)
    assert (await env.introspect(web, writer_too["refresh_token"]))["active"] is False
    assert_oauth_error(await refresh(env, web, writer_too["refresh_token"]), "invalid_grant")
    again = await env.start_authorize(ua, web, scope="docs:read docs:write")
    assert urlsplit(again.location).path == env.settings.consent_path, again.location
    still = await env.start_authorize(ua, web, scope="docs:read")  # docs:read's consent kept
    assert "code" in still.result, still.location


async def test_a_code_issued_before_a_scope_was_taken_from_its_client_gets_no_tokens(
    server_env: ServerEnv,
) -> None:
    """Taking a scope from a client revokes its grants that hold it, but an authorization code
    issued just before (codes live a minute) is no grant yet: redeemed, it would become one
    holding the scope the client lost. The exchange checks the code's scopes against what the
    client may ask for now: ``invalid_grant``, the code burnt; a code without the scope is
    redeemed."""
    env = server_env
    await two_apis(env)
    web = await env.client(
        api=URN_A, scopes=["docs:read", "docs:write"], grant_types=CODE_AND_REFRESH
    )
    await env.user()
    ua = env.browser()
    writer = await env.authorize(ua, web, resource=URN_A, scope="docs:read docs:write")
    reader = await env.authorize(ua, web, resource=URN_A, scope="docs:read")
    await env.admin.update_client(web.client.client_id, remove={"scopes": ["docs:write"]})
    env.clock.advance(env.settings.client_cache_ttl + 1)  # the server sees the change
    refused = await env.redeem(web, writer.code, writer.verifier)
    assert_oauth_error(refused, "invalid_grant")
    assert_oauth_error(await env.redeem(web, writer.code, writer.verifier), "invalid_grant")
    kept = await env.redeem(web, reader.code, reader.verifier)
    assert kept.status_code == 200, kept.text
    assert kept.json()["scope"] == "docs:read"


# -- finding 9: a refresh token presented by another client changes nothing -----------------------


async def refresh_setup(env: ServerEnv) -> tuple[NewClient, dict[str, Any]]:
    owner = await env.client(grant_types=["authorization_code", "refresh_token"])
    await env.user()
    flow = await env.authorize(env.browser(), owner)
    response = await env.redeem(owner, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    return owner, response.json()


async def test_refresh_token_of_another_client_is_refused_and_neither_rotated_nor_revoked(
    server_env: ServerEnv,
) -> None:
    env = server_env
    owner, body = await refresh_setup(env)
    public = await env.client(
        name="Attacker SPA",
        client_type="public",
        grant_types=["authorization_code", "refresh_token"],
    )
    confidential = await env.client(
        name="Attacker app", grant_types=["authorization_code", "refresh_token"]
    )
    for attacker, auth in ((public, "none"), (confidential, "basic")):
        response = await env.token(
            attacker,
            {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
            auth=auth,
        )
        assert_oauth_error(response, "invalid_grant")
    # the access token is still active and the refresh token still works, once, for its owner
    assert (await env.introspect(owner, body["access_token"]))["active"] is True
    refreshed = await env.token(
        owner, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert (await env.introspect(owner, refreshed.json()["access_token"]))["active"] is True


async def test_revocation_by_another_client_leaves_the_refresh_token_alive(
    server_env: ServerEnv,
) -> None:
    env = server_env
    owner, body = await refresh_setup(env)
    other = await env.client(name="Other", grant_types=["authorization_code", "refresh_token"])
    response = await env.revoke(other, body["refresh_token"])
    assert response.status_code == 200  # RFC 7009 §2.2: no hint for the caller
    refreshed = await env.token(
        owner, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


# -- lesser points --------------------------------------------------------------------------------


async def test_refresh_narrowed_without_openid_gets_no_id_token(server_env: ServerEnv) -> None:
    env = server_env
    web = await env.client(
        scopes=["openid", "offline_access", "docs:read"],
        grant_types=["authorization_code", "refresh_token"],
    )
    await env.user()
    flow = await env.authorize(env.browser(), web, scope="openid offline_access docs:read")
    body = (await env.redeem(web, flow.code, flow.verifier)).json()
    assert "id_token" in body
    narrowed = await env.token(
        web,
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "scope": "docs:read",
        },
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "docs:read"
    assert "id_token" not in narrowed.json()
    # the rotated refresh token keeps the grant's scope: openid again gives an ID token
    full = await env.token(
        web, {"grant_type": "refresh_token", "refresh_token": narrowed.json()["refresh_token"]}
    )
    assert "id_token" in full.json()


async def consent_text(env: ServerEnv, client: NewClient, scope: str) -> str:
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client, scope=scope)
    page = await ua.get(flow.location)
    fields = hidden_fields(page.text)
    response = await ua.post(
        env.settings.login_path,
        data={**fields, "username": "alice", "password": "correct horse battery"},
    )
    consent = await ua.get(response.headers["location"])
    assert 'name="decision"' in consent.text, consent.text[:300]
    return html.unescape(consent.text)


async def test_consent_page_with_offline_access_says_the_access_outlives_sign_out(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client(
        scopes=["openid", "offline_access", "docs:read"],
        grant_types=["authorization_code", "refresh_token"],
    )
    text = await consent_text(env, client, "openid offline_access docs:read")
    assert "signing out" not in text.lower()
    assert "keeps its access after you sign out" in text
    assert f'href="{env.settings.account_path}"' in text


async def test_consent_page_without_offline_access_says_signing_out_ends_the_access(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client(scopes=["openid", "docs:read"])
    text = await consent_text(env, client, "openid docs:read")
    assert "signing out or changing your password ends the access" in text
    assert "after you sign out" not in text


async def test_account_page_lists_consents_per_api(server_env: ServerEnv) -> None:
    env = server_env
    await two_apis(env)
    web = await env.client(apis=[URN_A, URN_B], api=None, scopes=["docs:read", "docs:write"])
    await env.user()
    ua = env.browser()
    assert "code" in (await env.authorize(ua, web, resource=URN_A, scope="docs:write")).result
    assert "code" in (await env.authorize(ua, web, resource=URN_B, scope="docs:read")).result
    page = html.unescape((await ua.get(env.settings.account_path)).text)
    assert "Docs: docs:write" in page
    assert "Billing: docs:read" in page
