"""Client authentication at the token endpoint through HTTP.

RFC 6749 §2.3 (one method per request), §2.3.1 (Basic with form-urlencoded id and secret, post),
§3.2.1, §5.2 (401 ``invalid_client`` with ``WWW-Authenticate`` for Basic); RFC 9700 §2.5 (BCP-22);
OAuth 2.1 §2.1 (O21-35: one client, one type), §2.4.1 (O21-19), §3.2.4 (O21-20).
"""

from __future__ import annotations

import base64
import re

import httpx
import pytest

from tests.server.harness import REDIRECT, ServerEnv, assert_oauth_error, basic, pkce_pair
from tokensmith.core.registration import NewClient


async def post_token(
    env: ServerEnv, form: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        return await c.post("/token", data=form, headers=headers or {})


async def code_form(env: ServerEnv, client: NewClient) -> dict[str, str]:
    """A valid authorization_code token request body (without client authentication)."""
    if await env.admin.find_user("alice") is None:
        await env.user()
    flow = await env.authorize(env.browser(), client)
    return {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }


def assert_invalid_client(response: httpx.Response, *, basic_challenge: bool) -> None:
    assert_oauth_error(response, "invalid_client", 401)
    challenge = response.headers.get("www-authenticate", "")
    if basic_challenge:
        assert challenge.lower().startswith("basic"), response.headers
    assert "access_token" not in response.text


# -- the methods that work ---------------------------------------------------------------------


async def test_client_secret_basic_works(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert (await post_token(env, form, headers)).status_code == 200


async def test_client_secret_post_works_when_registered(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(token_endpoint_auth_method="client_secret_post")
    form = await code_form(env, client)
    form.update(client_id=client.client.client_id, client_secret=client.client_secret or "")
    assert (await post_token(env, form)).status_code == 200


async def test_public_client_authenticates_with_client_id_only(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(client_type="public", name="SPA")
    assert client.client_secret is None
    form = await code_form(env, client)
    form["client_id"] = client.client.client_id
    assert (await post_token(env, form)).status_code == 200


async def test_basic_lowercase_scheme_accepted(server_env: ServerEnv) -> None:
    """The scheme name is case-insensitive (RFC 9110 §11.1)."""
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    header = basic(client.client.client_id, client.client_secret or "").replace("Basic", "bAsIc")
    assert (await post_token(env, form, {"Authorization": header})).status_code == 200


# -- one method per request (O21-20) ---------------------------------------------------------


async def test_basic_and_post_together_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    form.update(client_id=client.client.client_id, client_secret=client.client_secret or "")
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert_oauth_error(await post_token(env, form, headers), "invalid_request")
    # The code was not consumed by the refused request.
    del form["client_secret"]
    assert (await post_token(env, form, headers)).status_code == 200


async def test_basic_and_client_assertion_together_is_invalid_request(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    form.update(
        client_assertion="eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert_oauth_error(await post_token(env, form, headers), "invalid_request")


async def test_body_client_id_differing_from_basic_is_invalid_request(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client()
    other = await env.client(name="Other app")
    form = await code_form(env, client)
    form["client_id"] = other.client.client_id
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert_oauth_error(await post_token(env, form, headers), "invalid_request")


async def test_body_client_id_equal_to_basic_is_fine(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    form["client_id"] = client.client.client_id
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert (await post_token(env, form, headers)).status_code == 200


async def test_two_authorization_headers_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    value = basic(client.client.client_id, client.client_secret or "")
    headers = [("Authorization", value), ("Authorization", value)]
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post("/token", data=form, headers=headers)
    assert_oauth_error(response, "invalid_request")


# -- failures (BCP-22) -------------------------------------------------------------------------


async def test_wrong_secret_in_basic_is_401_with_challenge(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    headers = {"Authorization": basic(client.client.client_id, "ts_cs_wrong")}
    assert_invalid_client(await post_token(env, form, headers), basic_challenge=True)
    # A failed client authentication does not touch the code.
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert (await post_token(env, form, headers)).status_code == 200


async def test_wrong_secret_in_body_is_401(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(token_endpoint_auth_method="client_secret_post")
    form = await code_form(env, client)
    form.update(client_id=client.client.client_id, client_secret="ts_cs_wrong")
    assert_invalid_client(await post_token(env, form), basic_challenge=False)


async def test_confidential_client_without_credentials_is_401(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    assert_invalid_client(await post_token(env, form), basic_challenge=False)
    form["client_id"] = client.client.client_id  # method "none" for a confidential client
    assert_invalid_client(await post_token(env, form), basic_challenge=False)


async def test_unknown_client_same_as_wrong_secret(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    answers = []
    for client_id in (client.client.client_id, "ts_ci_doesnotexist"):
        headers = {"Authorization": basic(client_id, "ts_cs_wrong")}
        response = await post_token(env, form, headers)
        assert_invalid_client(response, basic_challenge=True)
        answers.append(
            (response.status_code, response.json(), response.headers["www-authenticate"])
        )
    assert answers[0] == answers[1]


async def test_method_other_than_registered_is_refused(server_env: ServerEnv) -> None:
    """A client registered for Basic cannot switch to post, and the other way round."""
    env = server_env
    basic_client = await env.client()
    form = await code_form(env, basic_client)
    post_form = {
        **form,
        "client_id": basic_client.client.client_id,
        "client_secret": basic_client.client_secret or "",
    }
    assert_invalid_client(await post_token(env, post_form), basic_challenge=False)
    post_client = await env.client(name="Post", token_endpoint_auth_method="client_secret_post")
    form = await code_form(env, post_client)
    headers = {
        "Authorization": basic(post_client.client.client_id, post_client.client_secret or "")
    }
    assert_invalid_client(await post_token(env, form, headers), basic_challenge=True)


MALFORMED_BASIC = [
    "Basic",
    "Basic ",
    "Basic !!!notbase64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b":secret-without-id").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(b"id:secret").decode()[:-2],
    "Basic " + base64.b64encode(b"id:secret").decode() + "===",
    "Basic " + base64.b64encode(b"%ZZ:%ff").decode(),
    "Basic " + base64.b64encode(b"\x00:\x00").decode(),
    "Basic " + base64.b64encode(b"%00:secret").decode(),
    "Basic " + base64.b64encode(b"ts_ci_x:%00").decode(),
    "Basic " + base64.b64encode(b"ts_ci_x\r\n:s").decode(),
    "Basic " + "QQ==" * 5000,
    "Bearer ts_at_abc",
    "Digest username=x",
    "basic\tYTpi",
    "",
]


@pytest.mark.parametrize("header", MALFORMED_BASIC)
async def test_malformed_basic_header_is_401_never_500(server_env: ServerEnv, header: str) -> None:
    env = server_env
    client = await env.client()
    verifier, _ = pkce_pair()
    form = {"grant_type": "authorization_code", "code": "ts_ac_x", "code_verifier": verifier}
    response = await post_token(env, form, {"Authorization": header})
    assert_invalid_client(response, basic_challenge=True)
    assert client.client_secret is not None


async def test_non_ascii_authorization_header_bytes_never_500(server_env: ServerEnv) -> None:
    env = server_env
    form = {"grant_type": "authorization_code", "code": "ts_ac_x", "code_verifier": "v" * 43}
    raw = [(b"authorization", b"Basic \xc3\xa9\xff:\x80")]
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post("/token", data=form, headers=raw)
    assert_invalid_client(response, basic_challenge=True)


# -- one client, one type (O21-35) -------------------------------------------------------------


async def test_public_client_sending_a_secret_is_refused(server_env: ServerEnv) -> None:
    env = server_env
    public = await env.client(client_type="public", name="SPA")
    form = await code_form(env, public)
    for secret in ("anything", "ts_cs_" + "A" * 43):
        body = {**form, "client_id": public.client.client_id, "client_secret": secret}
        assert_invalid_client(await post_token(env, body), basic_challenge=False)
        headers = {"Authorization": basic(public.client.client_id, secret)}
        assert_invalid_client(await post_token(env, form, headers), basic_challenge=True)
    headers = {"Authorization": basic(public.client.client_id, "")}
    assert_invalid_client(await post_token(env, form, headers), basic_challenge=True)


# -- secrets at rest ---------------------------------------------------------------------------


async def test_client_secrets_stored_as_hmac_digests(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    secret = client.client_secret
    assert secret is not None
    assert secret.startswith("ts_cs_")
    assert len(base64.urlsafe_b64decode(secret[6:] + "==")) >= 32  # >= 256 bits
    stored = await env.scalar(
        "SELECT secret_digest FROM ts_clients WHERE client_id = :id", id=client.client.client_id
    )
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert secret not in stored
    async with env.admin.db.engine.connect() as conn:
        from sqlalchemy import text

        rows = (await conn.execute(text("SELECT * FROM ts_clients"))).all()
    assert all(secret not in str(value) for row in rows for value in row)
    public = await env.client(client_type="public", name="SPA")
    assert (
        await env.scalar(
            "SELECT secret_digest FROM ts_clients WHERE client_id = :id",
            id=public.client.client_id,
        )
        is None
    )


async def test_rotated_secret_replaces_the_old_one(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    new_secret = await env.admin.rotate_client_secret(client.client.client_id)
    env.clock.advance(env.settings.client_cache_ttl + 0.5)  # the documented cache staleness
    old = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert_invalid_client(await post_token(env, form, old), basic_challenge=True)
    new = {"Authorization": basic(client.client.client_id, new_secret)}
    assert (await post_token(env, form, new)).status_code == 200


async def test_deleted_client_cannot_authenticate(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = await code_form(env, client)
    await env.admin.delete_client(client.client.client_id)
    env.clock.advance(env.settings.client_cache_ttl + 0.5)  # the documented cache staleness
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    assert_invalid_client(await post_token(env, form, headers), basic_challenge=True)
