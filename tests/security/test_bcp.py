"""RFC 9700 checklist, authorization server and resource server (security checklist §1a,
BCP-01..BCP-42).

Only the items not already proved by ``tests/server`` or ``tests/resource`` are here; the coverage
table in ``docs/security.md`` points at the others.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.server.harness import (
    PASSWORD,
    ServerEnv,
    assert_oauth_error,
    assert_page,
    hidden_fields,
)
from tokensmith.admin import AdminError

from .helpers import assert_no_redirect_to, consent_page, csp_directives, login_page, urls_in

OTHER_API = "https://other.test"


async def code_tokens(
    env: ServerEnv, client: Any, scope: str = "docs:read", **overrides: str
) -> dict[str, Any]:
    if not await env.admin.find_user("alice"):
        await env.user()
    flow = await env.authorize(env.browser(), client, scope=scope, **overrides)
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- BCP-03: http redirect URIs only for loopback ------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.test/cb",
        "http://localhost.evil.example/cb",
        "http://127.0.0.1.nip.io/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://localhost@evil.example/cb",
        "HTTP://rp.test/cb",
    ],
)
async def test_bcp_03_http_redirect_uri_refused_at_registration(env: ServerEnv, uri: str) -> None:
    await env.api()
    with pytest.raises(AdminError):
        await env.client(redirect_uris=[uri])
    with pytest.raises(AdminError):
        await env.client(redirect_uris=[uri], client_type="public", native=True)


async def test_bcp_03_https_and_native_loopback_registrable(env: ServerEnv) -> None:
    await env.client(redirect_uris=["https://rp.test/cb"])
    await env.client(redirect_uris=["http://127.0.0.1/cb"], client_type="public", native=True)


# -- BCP-04: no open redirector --------------------------------------------------------------------

EVIL = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "/%09/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", EVIL)
async def test_bcp_04_no_open_redirector_on_as_pages(env: ServerEnv, target: str) -> None:
    client = await env.client(post_logout_redirect_uris=["https://rp.test/bye"])
    await env.user()
    ua = env.browser()
    await env.authorize(ua, client)  # a session, so pages do not stop at "sign in first"
    cid = client.client.client_id
    for name in ("next", "return_to", "continue", "redirect", "redirect_uri", "url"):
        for path in ("/login", "/consent", "/logout", "/", "/authorize"):
            response = await ua.get(path, params={name: target, "client_id": cid})
            assert_no_redirect_to(response, target)
            assert "evil.example" not in response.headers.get("location", "")
    response = await ua.get(
        "/logout", params={"client_id": cid, "post_logout_redirect_uri": target}
    )
    assert_page(response)


# -- BCP-19, BCP-20, BCP-33 at a resource server, with the server's real tokens -------------------


async def test_bcp_19_token_for_another_api_refused_at_rs(
    env: ServerEnv, rs: httpx.AsyncClient
) -> None:
    await env.api()
    await env.admin.create_api(identifier=OTHER_API, scopes=("docs:read",), name="Other")
    client = await env.client(apis=[OTHER_API])  # a client allowed both APIs
    body = await code_tokens(env, client, resource=OTHER_API)
    response = await rs.get("/api/read", headers=bearer(body["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # control: a token for this API passes
    mine = await code_tokens(env, client)
    assert (await rs.get("/api/read", headers=bearer(mine["access_token"]))).status_code == 200


async def test_bcp_20_read_token_cannot_write(env: ServerEnv, rs: httpx.AsyncClient) -> None:
    client = await env.client()
    body = await code_tokens(env, client, scope="docs:read")
    response = await rs.post("/api/write", headers=bearer(body["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_bcp_33_query_token_ignored_at_rs(env: ServerEnv, rs: httpx.AsyncClient) -> None:
    client = await env.client()
    body = await code_tokens(env, client)
    response = await rs.get("/api/read", params={"access_token": body["access_token"]})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


# -- BCP-21: no password grant, for any client ----------------------------------------------------


async def test_bcp_21_password_grant_refused_for_every_client_type(env: ServerEnv) -> None:
    await env.user()
    clients = [
        await env.client(),
        await env.client(client_type="public"),
        await env.client(grant_types=["client_credentials"], redirect_uris=[]),
        await env.client(grant_types=["authorization_code", "refresh_token"], first_party=True),
        await env.client(token_endpoint_auth_method="client_secret_post"),
    ]
    for client in clients:
        for auth in ("basic", "post", "none"):
            form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
            response = await env.token(client, form, auth=auth)
            assert response.status_code in (400, 401), response.text
            assert "access_token" not in response.text
            if response.status_code == 400:
                assert response.json()["error"] in ("unsupported_grant_type", "invalid_request")


# -- BCP-25: client tokens are told apart from user tokens ----------------------------------------


async def test_bcp_25_client_credentials_token_is_marked_as_client(
    env: ServerEnv, rs: httpx.AsyncClient
) -> None:
    user = await env.user()
    machine = await env.client(
        grant_types=["client_credentials"], redirect_uris=[], scopes=["docs:read"]
    )
    response = await env.token(machine, {"grant_type": "client_credentials"})
    access = response.json()["access_token"]
    claims = await env.decode_access_token(access)
    assert claims["sub"] == claims["client_id"] == machine.client.client_id
    assert "auth_time" not in claims
    assert "sid" not in claims
    assert claims["sub"] != user.id
    me = await rs.get("/api/me", headers=bearer(access))
    assert me.json() == {"sub": machine.client.client_id, "client": True}
    web = await env.client()
    user_token = (await code_tokens(env, web))["access_token"]
    assert (await rs.get("/api/me", headers=bearer(user_token))).json() == {
        "sub": user.id,
        "client": False,
    }


# -- BCP-29: pages load nothing from elsewhere, Referer suppressed ---------------------------------


async def test_bcp_29_login_and_consent_pages_load_nothing_third_party(env: ServerEnv) -> None:
    client = await env.client()
    await env.user()
    ua = env.browser()
    for page in (await login_page(env, ua, client), await consent_page(env, env.browser(), client)):
        assert page.headers["referrer-policy"] == "no-referrer"
        urls = urls_in(page.text)
        assert urls, page.text
        for url in urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
        # the login page's one script is the passkey script, a same-origin static file
        scripts = re.findall(r"<script[^>]*>", page.text.lower())
        assert scripts in ([], ['<script src="/static/passkeys.js" defer>'])


# -- BCP-36 / BCP-37 / BCP-38: refresh tokens ------------------------------------------------------


async def refresh_client(env: ServerEnv) -> tuple[Any, dict[str, Any]]:
    client = await env.client(grant_types=["authorization_code", "refresh_token"])
    return client, await code_tokens(env, client)


async def test_bcp_36_refresh_bound_to_granted_scope_and_resource(env: ServerEnv) -> None:
    await env.api()
    await env.admin.create_api(identifier=OTHER_API, scopes=("docs:read",), name="Other")
    client, body = await refresh_client(env)
    rt = body["refresh_token"]
    wider = await env.token(
        client,
        {"grant_type": "refresh_token", "refresh_token": rt, "scope": "docs:read docs:write"},
    )
    assert_oauth_error(wider, "invalid_scope")
    # the refused request did not consume the token
    other = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": rt, "resource": OTHER_API}
    )
    assert_oauth_error(other, "invalid_target")
    # neither refusal consumed the token
    same = await env.token(client, {"grant_type": "refresh_token", "refresh_token": rt})
    assert same.status_code == 200, same.text


async def test_bcp_37_refresh_without_client_authentication_is_invalid_client(
    env: ServerEnv,
) -> None:
    client, body = await refresh_client(env)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": client.client.client_id,
    }
    response = await env.token(client, form, auth="raw")
    assert_oauth_error(response, "invalid_client", status=401)


async def test_bcp_38_refresh_token_is_opaque_and_unforgeable(env: ServerEnv) -> None:
    client, body = await refresh_client(env)
    rt: str = body["refresh_token"]
    assert rt.startswith("ts_rt_")
    assert "." not in rt
    for forged in (
        rt[:-1] + ("A" if rt[-1] != "A" else "B"),
        rt + "x",
        rt[:-4],
        "ts_rt_" + "A" * 43,
    ):
        response = await env.token(client, {"grant_type": "refresh_token", "refresh_token": forged})
        assert_oauth_error(response, "invalid_grant")


# -- BCP-41 / BCP-42: clickjacking and CSP on every page -----------------------------------------


async def every_page(env: ServerEnv) -> dict[str, httpx.Response]:
    client = await env.client(post_logout_redirect_uris=["https://rp.test/bye"])
    await env.user()
    pages: dict[str, httpx.Response] = {}
    pages["login"] = await login_page(env, env.browser(), client)
    ua = env.browser()
    pages["consent"] = await consent_page(env, ua, client)
    pages["logout confirmation"] = await ua.get("/logout")
    assert 'name="csrf_token"' in pages["logout confirmation"].text
    pages["error"] = await ua.get("/authorize", params={"client_id": "nobody"})
    pages["expired transaction"] = await ua.get("/login", params={"txn": "nope"})
    pages["signed out"] = await env.browser().get("/logout")
    bad = hidden_fields(pages["login"].text)
    ua2 = env.browser()
    pages["login error"] = await ua2.post("/login", data={**bad, "username": "x", "password": "y"})
    return pages


async def test_bcp_41_every_page_refuses_framing(env: ServerEnv) -> None:
    for name, page in (await every_page(env)).items():
        assert page.headers["content-type"].startswith("text/html"), name
        assert "'none'" in csp_directives(page)["frame-ancestors"], name
        assert page.headers["x-frame-options"] == "DENY", name


async def test_bcp_42_csp_level_2_without_unsafe_inline(env: ServerEnv) -> None:
    for name, page in (await every_page(env)).items():
        csp = csp_directives(page)
        script = csp.get("script-src", csp["default-src"])
        if name == "login":  # the passkey script: a static file of the server
            assert script == ["'self'"], name
        else:
            assert script == ["'none'"] or all(s.startswith(("'nonce-", "'sha")) for s in script), (
                name
            )
        for directive in csp.values():
            assert "'unsafe-inline'" not in directive, name
            assert "'unsafe-eval'" not in directive, name
        assert csp.get("object-src", csp["default-src"]) == ["'none'"], name
        assert csp["base-uri"] == ["'none'"], name
        scripts = re.findall(r"<script[^>]*>", page.text.lower())
        assert scripts == (['<script src="/static/passkeys.js" defer>'] if name == "login" else [])
        assert " on" + "click=" not in page.text.lower()


# -- BCP-40: security events revoke refresh tokens ------------------------------------------------


async def test_bcp_40_password_change_revokes_sessions_and_tokens(env: ServerEnv) -> None:
    from tests.support.clients import refresh, start

    client, body = await start(env)
    await env.admin.set_password("alice", "a brand new password")
    response = await refresh(env, client, str(body["refresh_token"]))
    assert response.json()["error"] == "invalid_grant"
    assert await env.introspect(client, str(body["access_token"])) == {"active": False}


async def test_bcp_40_logout_revokes_the_sessions_tokens_but_not_offline_access(
    env: ServerEnv,
) -> None:
    from urllib.parse import urlencode

    from tests.support.oidc import login, oidc_client

    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    online = await login(env, client, ua, scope="openid")
    offline = await login(env, client, ua, scope="openid offline_access")
    await ua.get("/logout?" + urlencode({"id_token_hint": offline["id_token"]}))
    assert await env.introspect(client, online["access_token"]) == {"active": False}
    kept = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]}
    )
    assert kept.status_code == 200
