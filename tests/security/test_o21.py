"""OAuth 2.1 deltas the authorization server must enforce (security checklist §2, O21-01..42).

Only the items not already proved by ``tests/server``; ``docs/security.md`` points at the others.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.resource.forge import forge
from tests.server.harness import ServerEnv, assert_oauth_error, basic
from tests.support.private_key_jwt import ASSERTION_TYPE, KeyPair, pkjwt_client, post
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.admin import AdminError
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings


async def tokens(env: ServerEnv, client: Any, **overrides: str) -> tuple[Any, dict[str, Any]]:
    if not await env.admin.find_user("alice"):
        await env.user()
    flow = await env.authorize(env.browser(), client, **overrides)
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    return flow, response.json()


# -- O21-08 / O21-09: what may be registered ------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["https://rp.test/cb#x", "https://rp.test/cb#", "/cb", "rp.test/cb", "cb", "https:///cb"],
)
async def test_o21_08_redirect_uri_absolute_without_fragment(env: ServerEnv, uri: str) -> None:
    await env.api()
    with pytest.raises(AdminError):
        await env.client(redirect_uris=[uri])


async def test_o21_09_private_use_scheme_must_be_reverse_dns(env: ServerEnv) -> None:
    await env.api()
    for uri in ("myapp:/cb", "myapp://cb", "com.example.app://host/cb"):
        with pytest.raises(AdminError):
            await env.client(redirect_uris=[uri], client_type="public", native=True)
    with pytest.raises(AdminError):  # only native apps
        await env.client(redirect_uris=["com.example.app:/cb"])
    await env.client(redirect_uris=["com.example.app:/cb"], client_type="public", native=True)


# -- O21-15: reuse revokes the grant; a fresh authorization still works --------------------------


async def test_o21_15_after_reuse_a_fresh_authorization_works(env: ServerEnv) -> None:
    client = await env.client(
        client_type="public", grant_types=["authorization_code", "refresh_token"]
    )
    _, body = await tokens(env, client)
    rt = body["refresh_token"]
    refresh = {"grant_type": "refresh_token", "refresh_token": rt}
    rotated = await env.token(client, refresh, auth="none")
    assert rotated.status_code == 200
    assert_oauth_error(await env.token(client, refresh, auth="none"), "invalid_grant")
    newest = {"grant_type": "refresh_token", "refresh_token": rotated.json()["refresh_token"]}
    assert_oauth_error(await env.token(client, newest, auth="none"), "invalid_grant")
    _, again = await tokens(env, client)
    fresh = {"grant_type": "refresh_token", "refresh_token": again["refresh_token"]}
    assert (await env.token(client, fresh, auth="none")).status_code == 200


# -- O21-19: secrets never in the URL, brute force bounded per client ------------------------------


async def test_o21_19_secret_guessing_is_rate_limited_per_address(
    sqlite_url: str, clock: FakeClock
) -> None:
    """Failed client authentications are counted per address, not per claimed client: the
    guessing address is refused, the real client elsewhere is not locked out (round two,
    finding 5: a per-client lockout let anyone lock out any client)."""
    settings = Settings(
        issuer=ISSUER,
        database_url=sqlite_url,
        token_failure_rate_limit="10/minute",
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        kw: dict[str, Any] = {"grant_types": ["client_credentials"], "redirect_uris": []}
        conf = await env.client(**kw)
        assert conf.client_secret is not None
        statuses = []
        guesser = httpx.ASGITransport(app=env.app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=guesser, base_url=ISSUER) as http:
            for i in range(30):
                header = {"Authorization": basic(conf.client.client_id, f"guess-{i}")}
                response = await http.post(
                    "/token", data={"grant_type": "client_credentials"}, headers=header
                )
                statuses.append(response.status_code)
            assert statuses[:10] == [401] * 10
            assert set(statuses[10:]) == {429}, statuses
            # the guessing address is refused even with the right secret ...
            right = {"Authorization": basic(conf.client.client_id, conf.client_secret)}
            limited = await http.post(
                "/token", data={"grant_type": "client_credentials"}, headers=right
            )
            assert limited.status_code == 429
        # ... and the client itself, from its own address, is not locked out
        assert (await env.token(conf, {"grant_type": "client_credentials"})).status_code == 200


# -- O21-24: no-store on every response with tokens or credentials ---------------------------------


async def test_o21_24_no_store_on_every_sensitive_response(env: ServerEnv) -> None:
    client = await env.client(scopes=["openid", "docs:read"], can_introspect=True)
    _, body = await tokens(env, client, scope="openid docs:read")
    access = body["access_token"]
    responses = {
        "token": await env.token(client, {"grant_type": "authorization_code", "code": "nope"}),
        "introspect": await env.post_as(client, "/introspect", {"token": access}),
        "revoke": await env.post_as(client, "/revoke", {"token": "unknown"}),
    }
    http = env.browser()
    responses["userinfo"] = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {access}"}
    )
    responses["userinfo error"] = await http.get("/userinfo", headers={"Authorization": "Bearer x"})
    for name, response in responses.items():
        assert "no-store" in response.headers.get("cache-control", ""), name


# -- O21-27: an invalid replay does not revoke the legitimate client's tokens --------------------


async def test_o21_27_invalid_replay_does_not_revoke(env: ServerEnv) -> None:
    client = await env.client(scopes=["docs:read"], can_introspect=True)
    await env.user()
    flow = await env.authorize(env.browser(), client)
    good = await env.redeem(client, flow.code, flow.verifier)
    assert good.status_code == 200
    access = good.json()["access_token"]
    # a replay by someone without the client's secret is refused before the code is looked at
    form = {"grant_type": "authorization_code", "code": flow.code, "code_verifier": flow.verifier}
    unauthenticated = await env.token(
        client, {**form, "client_id": client.client.client_id, "client_secret": "x"}, auth="raw"
    )
    assert_oauth_error(unauthenticated, "invalid_client", status=401)
    assert (await env.introspect(client, access))["active"] is True


# -- O21-29 / O21-32: codes and tokens unguessable, nothing inside them ---------------------------

RANDOM_PART = re.compile(r"^ts_[a-z]{2}_([A-Za-z0-9_-]+)$")


def random_part(value: str) -> str:
    match = RANDOM_PART.match(value)
    assert match, value
    return match.group(1)


async def test_o21_32_codes_and_tokens_have_128_bits_or_more(env: ServerEnv) -> None:
    client = await env.client(grant_types=["authorization_code", "refresh_token"])
    machine = await env.client(
        name="Worker",
        grant_types=["client_credentials"],
        redirect_uris=[],
        access_token_format="opaque",
    )
    await env.user()
    values: dict[str, list[str]] = {"code": [], "refresh": [], "opaque": [], "secret": []}
    ua = env.browser()
    for _ in range(12):
        flow = await env.authorize(ua, client)
        values["code"].append(flow.code)
        assert flow.params["code_challenge"] not in flow.code  # O21-29
        body = (await env.redeem(client, flow.code, flow.verifier)).json()
        values["refresh"].append(body["refresh_token"])
    for _ in range(20):
        form = {"grant_type": "client_credentials"}
        values["opaque"].append((await env.token(machine, form)).json()["access_token"])
    for _ in range(5):
        made = await env.client(grant_types=["client_credentials"], redirect_uris=[])
        values["secret"].append(made.client_secret or "")
    for kind, found in values.items():
        parts = [random_part(v) for v in found]
        assert len(set(parts)) == len(parts), kind
        assert min(len(p) for p in parts) >= 27, kind  # >= 160 bits of base64url
        first = Counter(p[:3] for p in parts)
        assert first.most_common(1)[0][1] <= 3, (kind, first)  # no shared prefix beyond the tag


# -- O21-31 / O21-35: public clients are public ---------------------------------------------------


async def test_o21_31_public_client_cannot_use_client_credentials(env: ServerEnv) -> None:
    await env.api()
    with pytest.raises(AdminError):
        await env.client(client_type="public", grant_types=["client_credentials"])
    public = await env.client(client_type="public")
    response = await env.token(public, {"grant_type": "client_credentials"}, auth="none")
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("unauthorized_client", "invalid_client")


async def test_o21_35_public_client_sending_an_assertion_is_refused(env: ServerEnv) -> None:
    public = await env.client(client_type="public")
    await env.user()
    flow = await env.authorize(env.browser(), public)
    keys = KeyPair()
    assertion = forge(
        {"alg": "ES256", "kid": "client-key-1"},
        {
            "iss": public.client.client_id,
            "sub": public.client.client_id,
            "aud": ISSUER,
            "exp": int(env.clock()) + 60,
            "jti": str(uuid.uuid4()),
        },
        keys.private,
    )
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": public.client.redirect_uris[0],
        "client_id": public.client.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    response = await env.token(public, form, auth="raw")
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "invalid_request")


# -- O21-37: client assertion audience -----------------------------------------------------------


async def test_o21_37_assertion_audience_issuer_accepted_others_refused(env: ServerEnv) -> None:
    keys = KeyPair()
    client = await pkjwt_client(env, keys)
    cid = client.client.client_id

    def signed(aud: Any) -> str:
        claims = {"iss": cid, "sub": cid, "aud": aud, "exp": int(env.clock()) + 60}
        return forge(
            {"alg": "ES256", "kid": "client-key-1"},
            {**claims, "jti": str(uuid.uuid4())},
            keys.private,
        )

    assert (await post(env, signed(ISSUER))).status_code == 200
    for aud in ("https://evil.example", ISSUER + "/", ISSUER + "/authorize", [], "", None):
        response = await post(env, signed(aud))
        assert_oauth_error(response, "invalid_client", status=401)


async def test_o21_27_replay_with_a_wrong_verifier_does_not_revoke(env: ServerEnv) -> None:
    client = await env.client(client_type="public", scopes=["docs:read"])
    introspector = await env.client(name="RS", can_introspect=True)
    await env.user()
    flow = await env.authorize(env.browser(), client)
    good = await env.redeem(client, flow.code, flow.verifier, auth="none")
    assert good.status_code == 200
    access = good.json()["access_token"]
    replay = await env.redeem(client, flow.code, "w" * 43, auth="none")
    assert_oauth_error(replay, "invalid_grant")
    assert (await env.introspect(introspector, access))["active"] is True


async def test_o21_36_public_clients_refresh_tokens_live_shorter(env: ServerEnv) -> None:
    spa = await env.client(
        name="SPA",
        client_type="public",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["docs:read"],
    )
    await env.user()
    flow = await env.authorize(env.browser(), spa)
    body = (await env.redeem(spa, flow.code, flow.verifier, auth="none")).json()
    idle = env.settings.public_refresh_token_idle_ttl
    assert idle < env.settings.refresh_token_idle_ttl
    env.clock.advance(idle + 1)
    response = await env.token(
        spa, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, auth="none"
    )
    assert_oauth_error(response, "invalid_grant")
