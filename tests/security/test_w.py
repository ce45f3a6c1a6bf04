"""Attack classes on the login, consent and logout pages (security checklist §5, W-01..W-95).

Only the items not already proved by ``tests/server`` and ``tests/client``; ``docs/security.md``
points at the others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.resource.forge import forge
from tests.server.harness import (
    API,
    PASSWORD,
    ServerEnv,
    assert_page,
    hidden_fields,
    query_of,
)
from tests.support.settings import ISSUER
from tokensmith.admin import AdminError
from tokensmith.core import passwords

from .conftest import resource_app
from .helpers import consent_page, login_page

BYE = "https://rp.test/bye"


async def oidc_client(env: ServerEnv, **kwargs: Any) -> Any:
    kwargs.setdefault("scopes", ["openid", "docs:read"])
    kwargs.setdefault("post_logout_redirect_uris", [BYE])
    kwargs.setdefault("first_party", True)
    return await env.client(**kwargs)


async def signed_in(env: ServerEnv, client: Any) -> tuple[httpx.AsyncClient, str]:
    """A browser with a session, and the ID token it got."""
    if not await env.admin.find_user("alice"):
        await env.user()
    ua = env.browser()
    flow = await env.authorize(ua, client, scope="openid")
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    return ua, body["id_token"]


async def still_signed_in(env: ServerEnv, ua: httpx.AsyncClient, client: Any) -> bool:
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    return "code" in flow.result


# -- W-13, W-15, W-16, W-17: RP-initiated logout ------------------------------------------------


async def test_w_13_post_logout_uri_with_added_query_refused(env: ServerEnv) -> None:
    client = await oidc_client(env)
    ua, id_token = await signed_in(env, client)
    for uri in (BYE + "?foo=bar", BYE + "/", BYE.upper(), BYE + "#x"):
        response = await ua.get(
            "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": uri}
        )
        assert_page(response)
    assert await still_signed_in(env, ua, client)


async def test_w_15_forged_or_alg_none_hint_refused(env: ServerEnv) -> None:
    client = await oidc_client(env)
    ua, id_token = await signed_in(env, client)
    header = jwt.get_unverified_header(id_token)
    claims = jwt.decode(id_token, options={"verify_signature": False})
    for alg in ("none", "None", "NONE"):
        forged = forge({**header, "alg": alg}, claims)
        response = await ua.get(
            "/logout", params={"id_token_hint": forged, "post_logout_redirect_uri": BYE}
        )
        assert_page(response)
    tampered = id_token.split(".")
    other = forge(header, {**claims, "sub": "someone-else"}, b"k", sign_alg="HS256")
    tampered[1] = other.split(".")[1]
    response = await ua.get(
        "/logout", params={"id_token_hint": ".".join(tampered), "post_logout_redirect_uri": BYE}
    )
    assert_page(response)
    assert await still_signed_in(env, ua, client)


async def test_w_16_hint_of_one_client_with_another_clients_uri_refused(env: ServerEnv) -> None:
    a = await oidc_client(env, name="A")
    b = await oidc_client(env, name="B", post_logout_redirect_uris=["https://b.test/bye"])
    ua, id_token = await signed_in(env, a)
    for params in (
        {"id_token_hint": id_token, "post_logout_redirect_uri": "https://b.test/bye"},
        {
            "id_token_hint": id_token,
            "client_id": b.client.client_id,
            "post_logout_redirect_uri": "https://b.test/bye",
        },
    ):
        assert_page(await ua.get("/logout", params=params))
    assert await still_signed_in(env, ua, a)


async def test_w_17_logout_redirect_echoes_state_only_when_sent(env: ServerEnv) -> None:
    client = await oidc_client(env)
    ua, id_token = await signed_in(env, client)
    response = await ua.get(
        "/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "s-1"},
    )
    assert response.status_code == 302
    assert response.headers["location"] == BYE + "?state=s-1"
    ua2, id_token2 = await signed_in(env, client)
    response = await ua2.get(
        "/logout", params={"id_token_hint": id_token2, "post_logout_redirect_uri": BYE}
    )
    assert response.headers["location"] == BYE


# -- W-20, W-21, W-23: throttling -----------------------------------------------------------------


async def try_login(
    env: ServerEnv, ua: httpx.AsyncClient, client: Any, username: str, password: str, **kw: Any
) -> httpx.Response:
    page = await login_page(env, ua, client)
    fields = hidden_fields(page.text)
    return await ua.post(
        "/login", data={**fields, "username": username, "password": password}, **kw
    )


async def test_w_20_w_21_address_throttle_not_reset_by_forwarded_headers(
    env: ServerEnv,
) -> None:
    """Stuffing: many accounts, one password, from one address that claims another address in
    every request; the per-address limit (50 failures) still applies."""
    client = await env.client()
    await env.user()
    ua = env.browser()
    statuses = []
    for i in range(55):
        spoof = {"X-Forwarded-For": f"10.0.{i}.1", "Forwarded": f"for=10.1.{i}.1"}
        response = await try_login(env, ua, client, f"user{i}", "Winter2026!", headers=spoof)
        statuses.append(response.status_code)
    assert 429 in statuses[50:], statuses
    locked = await try_login(
        env, ua, client, "alice", PASSWORD, headers={"X-Forwarded-For": "1.2.3.4"}
    )
    assert locked.status_code == 429
    assert "__Host-tokensmith_as_session" not in locked.headers.get("set-cookie", "")


async def test_w_23_concurrent_failures_all_counted_and_lock_is_time_boxed(
    env: ServerEnv,
) -> None:
    client = await env.client(first_party=True)
    await env.user()
    browsers = [env.browser() for _ in range(12)]
    pages = [await login_page(env, ua, client) for ua in browsers]
    results = await asyncio.gather(
        *(
            ua.post("/login", data={**hidden_fields(p.text), "username": "alice", "password": "x"})
            for ua, p in zip(browsers, pages, strict=True)
        )
    )
    assert all(r.status_code in (200, 401, 429) for r in results)
    locked = await try_login(env, env.browser(), client, "alice", PASSWORD)
    assert locked.status_code == 429  # 12 failures > 5 free attempts: all were counted
    env.clock.advance(15 * 60 + 1)  # the longest back-off
    ok = await try_login(env, env.browser(), client, "alice", PASSWORD)
    assert ok.status_code == 303, ok.text


# -- W-25: unknown users take the same hashing path ----------------------------------------------


async def test_w_25_unknown_user_is_verified_against_a_dummy_hash(
    env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await env.client()
    await env.user()
    calls: list[str] = []
    original = passwords._Argon2.verify

    def spy(self: Any, hash_: str, password: str) -> bool:
        calls.append(hash_.split("$")[3])  # the argon2 parameters m=,t=,p=
        result: bool = original(self, hash_, password)
        return result

    monkeypatch.setattr(passwords._Argon2, "verify", spy)
    await try_login(env, env.browser(), client, "alice", "wrong password")
    await try_login(env, env.browser(), client, "nobody-here", "wrong password")
    await try_login(env, env.browser(), client, "nobody@example.com", "wrong password")
    assert len(calls) == 3, calls
    assert len(set(calls)) == 1  # same argon2 parameters: the same work


# -- W-38, W-42, W-43: escaping and what the consent page shows -----------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "${7*7}",
    "\u202eevil",
]


@pytest.mark.parametrize("name", HOSTILE)
async def test_w_38_client_name_escaped(env: ServerEnv, name: str) -> None:
    try:
        client = await env.client(name=name)
    except AdminError:
        return  # refused at registration is fine too
    await env.user()
    for page in (
        await login_page(env, env.browser(), client),
        await consent_page(env, env.browser(), client),
    ):
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        if "7*7" in name:
            assert name in page.text  # shown as text, not evaluated
        if "<" in name:
            assert "&lt;" in page.text
            assert "alert(1)" in page.text


async def test_w_38_overlong_client_name_refused_or_capped(env: ServerEnv) -> None:
    try:
        client = await env.client(name="A" * 5000)
    except AdminError:
        return
    page = await login_page(env, env.browser(), client)
    assert "A" * 1001 not in page.text


async def test_w_42_consent_shows_client_destination_and_scopes(env: ServerEnv) -> None:
    client = await env.client(name="CloudDocs Web")
    await env.user()
    page = await consent_page(env, env.browser(), client)
    assert "CloudDocs Web" in page.text
    assert "rp.test" in page.text
    assert "docs:read" in page.text


@pytest.mark.parametrize(
    "param", ["state", "login_hint", "ui_locales", "acr_values", "error_description", "nonce"]
)
async def test_w_43_reflected_parameters_escaped(env: ServerEnv, param: str) -> None:
    client = await env.client()
    payload = '"><script>alert(1)</script>'
    ua = env.browser()
    # an error page (unknown redirect) and the login page both see the parameter
    bad = await env.start_authorize(
        ua, client, redirect_uri="https://evil.example", **{param: payload}
    )
    assert "<script>alert" not in bad.response.text
    ok = await env.start_authorize(ua, client, **{param: payload})
    if ok.response.status_code == 302 and urlsplit(ok.location).path == "/login":
        page = await ua.get(ok.location)
        assert "<script>alert" not in page.text
    else:
        assert "<script>alert" not in ok.response.text


# -- W-48: Host never shapes what the server says -------------------------------------------------


async def test_w_48_host_header_does_not_reach_tokens_or_pages(env: ServerEnv) -> None:
    client = await oidc_client(env, first_party=False)
    await env.user()
    ua = env.browser()
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    flow = await env.start_authorize(ua, client, scope="openid")
    start = await ua.get("/authorize", params=flow.params, headers=evil)
    assert "evil" not in start.headers["location"]
    page = await ua.get(start.headers["location"], headers=evil)
    assert "evil.example" not in page.text
    fields = hidden_fields(page.text)
    login = await ua.post(
        "/login", data={**fields, "username": "alice", "password": PASSWORD}, headers=evil
    )
    assert "evil" not in login.headers["location"]
    consent = await ua.get(login.headers["location"], headers=evil)
    assert "evil.example" not in consent.text
    done = await ua.post(
        "/consent", data={**hidden_fields(consent.text), "decision": "allow"}, headers=evil
    )
    result = query_of(done.headers["location"])
    assert result["iss"] == ISSUER
    body = (await env.redeem(client, result["code"], flow.verifier)).json()
    assert jwt.decode(body["id_token"], options={"verify_signature": False})["iss"] == ISSUER
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["iss"] == ISSUER


# -- W-51: iss in every authorization response ----------------------------------------------------


async def test_w_51_iss_in_every_authorization_response(env: ServerEnv) -> None:
    client = await env.client(scopes=["openid", "docs:read"])
    await env.user()
    responses = [
        (await env.authorize(env.browser(), client)).result,
        (await env.authorize(env.browser(), client, decision="deny", prompt="consent")).result,
        (await env.start_authorize(env.browser(), client, scope="bogus")).result,
        (await env.start_authorize(env.browser(), client, prompt="none")).result,
        (await env.start_authorize(env.browser(), client, code_challenge_method="plain")).result,
    ]
    assert [("code" in r) or r.get("error") for r in responses] == [
        True,
        "access_denied",
        "invalid_scope",
        "login_required",
        "invalid_request",
    ]
    for result in responses:
        assert result["iss"] == ISSUER


# -- W-85..W-89: usernames, e-mails and passwords ------------------------------------------------


async def test_w_85_compatibility_variants_are_one_username(env: ServerEnv) -> None:
    await env.admin.create_user(username="Kevin", password=PASSWORD)
    for twin in ("\u212aevin", "\uff2bevin", "kevin", "KEVIN"):
        with pytest.raises(AdminError):
            await env.admin.create_user(username=twin, password=PASSWORD)


async def test_w_86_invisible_characters_never_reach_another_account(env: ServerEnv) -> None:
    client = await env.client(first_party=True)
    await env.user()
    for bad in ("alice\u200b", "ali\u202ece", "alice\x00"):
        with pytest.raises(AdminError):
            await env.admin.create_user(username=bad, password=PASSWORD)
    for login in ("alice\u200b", "\u200balice", "ali\u202ece", "alice\x00"):
        response = await try_login(env, env.browser(), client, login, PASSWORD)
        assert response.status_code != 303 or "code=" not in response.headers.get("location", "")
        assert response.status_code in (200, 400, 401), (login, response.status_code)


async def test_w_87_case_folding_collisions_do_not_match(env: ServerEnv) -> None:
    client = await env.client(first_party=True)
    await env.admin.create_user(username="mike", email="mike@example.org", password=PASSWORD)
    for login in ("m\u0131ke@example.org", "M\u0130KE@EXAMPLE.ORG", "m\u0131ke"):
        response = await try_login(env, env.browser(), client, login, PASSWORD)
        assert response.status_code != 303, login
    ok = await try_login(env, env.browser(), client, "MIKE@example.org", PASSWORD)
    assert ok.status_code == 303


async def test_w_89_passwords_not_truncated(env: ServerEnv) -> None:
    client = await env.client(first_party=True)
    long_password = "p" * 72 + "-the-rest-matters"
    await env.admin.create_user(username="bob", password=long_password)
    wrong = "p" * 72 + "-something-else!!"
    assert (await try_login(env, env.browser(), client, "bob", wrong)).status_code != 303
    assert (await try_login(env, env.browser(), client, "bob", long_password)).status_code == 303
    await env.admin.create_user(username="carol", password="c" * 128)
    assert (await try_login(env, env.browser(), client, "carol", "c" * 128)).status_code == 303


# -- W-81 / W-82: token-type confusion ------------------------------------------------------------


async def test_w_81_id_token_refused_at_rs(env: ServerEnv) -> None:
    """Even at an API whose audience is the client id (so ``aud`` alone would not save it),
    an ID token is not an access token: its ``typ`` is not ``at+jwt``."""
    client = await oidc_client(env, scopes=["openid", "docs:read"])
    await env.user()
    flow = await env.authorize(env.browser(), client, scope="openid docs:read")
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    async with httpx.AsyncClient(transport=env.transport, base_url=ISSUER) as as_http:
        app = resource_app(env, as_http, audience=client.client.client_id)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://client-api.test"
        ) as rs:
            headers = {"Authorization": "Bearer " + body["id_token"]}
            response = await rs.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_w_82_other_jwts_refused_as_access_token_and_hint(
    env: ServerEnv, rs: httpx.AsyncClient
) -> None:
    from tests.support.private_key_jwt import KeyPair, assertion, pkjwt_client

    client = await oidc_client(env, scopes=["openid", "docs:read"])
    await env.user()
    flow = await env.authorize(env.browser(), client, scope="openid docs:read")
    access = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
    start = await env.start_authorize(env.browser(), client, scope="openid", id_token_hint=access)
    assert start.result["error"] == "invalid_request"
    keys = KeyPair()
    signer = await pkjwt_client(env, keys)
    client_assertion = assertion(env, signer, keys, aud=API)
    response = await rs.get("/api/me", headers={"Authorization": "Bearer " + client_assertion})
    assert response.status_code == 401


# -- W-71 / BCP-32: no token, code or secret in the server's logs or audit events -----------------


async def test_w_71_no_secrets_in_logs_or_audit_events(
    env: ServerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await oidc_client(
        env,
        scopes=["openid", "offline_access", "docs:read"],
        first_party=True,
        grant_types=["authorization_code", "refresh_token"],
    )
    await env.user()
    ua = env.browser()
    flow = await env.authorize(ua, client, scope="openid offline_access docs:read")
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    replay = await env.redeem(client, flow.code, flow.verifier)  # code replay: logged + audited
    assert replay.status_code == 400
    flow2 = await env.authorize(ua, client, scope="openid offline_access docs:read")
    body2 = (await env.redeem(client, flow2.code, flow2.verifier)).json()
    rotated = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": body2["refresh_token"]}
    )
    reuse = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": body2["refresh_token"]}
    )
    assert reuse.status_code == 400
    await env.browser().get(
        "/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}
    )
    await env.revoke(client, body["access_token"])
    await try_login(env, env.browser(), client, "alice", "a wrong password")
    secrets = [
        flow.code,
        flow2.code,
        flow.verifier,
        body["access_token"],
        body["refresh_token"],
        body["id_token"],
        body2["refresh_token"],
        rotated.json()["refresh_token"],
        client.client_secret or "",
        PASSWORD,
        "a wrong password",
    ]
    logged = "\n".join(f"{r.getMessage()} {getattr(r, '__dict__', {})}" for r in caplog.records)
    await env.app.state.runtime.audit.flush()  # the background audit writer
    audit = str(await env.scalar("SELECT group_concat(detail, ' ') FROM ts_audit_events"))
    assert "grant_id" in audit  # the replay and reuse events were written
    for secret in secrets:
        assert secret
        assert secret not in logged
        assert secret not in audit


async def test_w_88_mixed_script_usernames_refused(env: ServerEnv) -> None:
    for confusable in ("\u0430dmin", "p\u0430ypal", "\u03bfscar"):  # Cyrillic a, Greek omicron
        with pytest.raises(AdminError):
            await env.admin.create_user(username=confusable, password=PASSWORD)
    for fine in (
        "admin",
        "\u0430\u0434\u043c\u0438\u043d",
        "jos\u00e9",
        "\u3084\u307e\u7530",
        "user_42",
    ):
        await env.admin.create_user(username=fine, password=PASSWORD)
