"""``GET /authorize`` through HTTP: every rule, each refusal included.

RFC 6749 §4.1.1/§4.1.2.1, RFC 9700 §2.1/§4.1.3/§4.11.2, OAuth 2.1 §4.1.1, RFC 8252 §7.3,
RFC 9207, RFC 8707. Errors about the client or its redirect URI are shown on a page and never
redirected; every later error goes to the redirect URI with ``error``, ``error_description``,
``state`` and ``iss``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import httpx
import pytest

from tests.server.harness import (
    API,
    REDIRECT,
    ServerEnv,
    assert_page,
    assert_redirect_error,
    pkce_pair,
    query_of,
)

OTHER_REDIRECT = "https://rp.test/other-cb"


async def get_authorize(ua: httpx.AsyncClient, query: str | dict[str, str]) -> httpx.Response:
    if isinstance(query, dict):
        query = urlencode(query)
    return await ua.get("/authorize?" + query)


async def assert_nothing_stored(env: ServerEnv) -> None:
    counts = await env.row_counts()
    assert counts == dict.fromkeys(counts, 0), counts


# -- step 1: client and redirect URI, shown on a page ----------------------------------------


async def test_valid_request_without_session_goes_to_login(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    flow = await env.start_authorize(env.browser(), client)
    assert flow.response.status_code == 302
    assert flow.location.startswith("/login?txn=ts_ix_")
    assert await env.count("ts_interactions") == 1


async def test_unknown_client_id_shows_page_without_redirect(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client, client_id="ts_ci_unknown")
    response = await get_authorize(env.browser(), params)
    assert_page(response)
    assert "not registered" in response.text
    await assert_nothing_stored(env)


async def test_missing_client_id_shows_page_without_redirect(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client, client_id=None)
    response = await get_authorize(env.browser(), params)
    assert_page(response)
    await assert_nothing_stored(env)


async def test_unregistered_redirect_uri_shows_page_without_redirect(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, OTHER_REDIRECT])
    for bad in ("https://evil.example/cb", "https://rp.test/cb3"):
        params, _ = env.authorize_params(client, redirect_uri=bad)
        response = await get_authorize(env.browser(), params)
        assert_page(response)
        assert "evil.example" not in response.headers.get("location", "")
    await assert_nothing_stored(env)


async def test_missing_redirect_uri_with_several_registered_shows_page(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, OTHER_REDIRECT])
    params, _ = env.authorize_params(client, redirect_uri=None)
    response = await get_authorize(env.browser(), params)
    assert_page(response)
    await assert_nothing_stored(env)


async def test_missing_redirect_uri_with_one_registered_uses_it(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client, redirect_uri=None)
    assert flow.location.startswith(REDIRECT + "?")
    # Not sent at /authorize, so the token request may omit it too (OAuth 2.1 §4.1.3).
    form = {"grant_type": "authorization_code", "code": flow.code, "code_verifier": flow.verifier}
    response = await env.token(client, form)
    assert response.status_code == 200, response.text


async def test_second_registered_redirect_uri_is_used_when_sent(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, OTHER_REDIRECT])
    await env.user()
    flow = await env.authorize(env.browser(), client, redirect_uri=OTHER_REDIRECT)
    assert flow.location.startswith(OTHER_REDIRECT + "?")
    assert "code" in flow.result


BCP_01_VARIANTS = [
    "https://rp.test/cb/",
    "https://rp.test/cb?x=1",
    "https://rp.test/CB",
    "https://RP.test/cb",
    "https://rp.test:443/cb",
    "https://rp.test/cb#f",
    "https://rp.test/cb/../cb",
    "https://rp.test/cb%2F..%2Fevil",
    "https://rp.test.evil.example/cb",
    "https://rp.test@evil.example/cb",
    "https://rp.test%40evil.example/cb",
    " https://rp.test/cb",
    "https://rp.test/cb ",
    "https://rp.test/cb\x00",
    "http://rp.test/cb",
    "//rp.test/cb",
]


@pytest.mark.parametrize("variant", BCP_01_VARIANTS)
async def test_redirect_uri_exact_match_bcp01(server_env: ServerEnv, variant: str) -> None:
    """RFC 9700 §4.1.3: any variant of the registered URI is refused, on a page."""
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, OTHER_REDIRECT])
    params, _ = env.authorize_params(client, redirect_uri=variant)
    response = await get_authorize(env.browser(), params)
    assert_page(response)
    await assert_nothing_stored(env)


async def test_redirect_uri_exact_match_control_succeeds(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, OTHER_REDIRECT])
    await env.user()
    flow = await env.authorize(env.browser(), client, redirect_uri=REDIRECT)
    assert flow.response.status_code == 303
    assert "code" in flow.result


async def test_redirect_uri_with_query_matches_only_identically(server_env: ServerEnv) -> None:
    """oidcc-redirect-uri-query-OK / -mismatch / -added."""
    env = server_env
    registered = "https://rp.test/cb?tenant=a"
    client = await env.client(redirect_uris=[registered])
    await env.user()
    for bad in ("https://rp.test/cb?tenant=b", "https://rp.test/cb?tenant=a&x=1"):
        params, _ = env.authorize_params(client, redirect_uri=bad)
        assert_page(await get_authorize(env.browser(), params))
    flow = await env.authorize(env.browser(), client, redirect_uri=registered)
    assert flow.location.startswith(registered + "&code=")
    assert query_of(flow.location)["tenant"] == "a"


# -- native apps: loopback on any port (RFC 8252 §7.3) -----------------------------------------

NATIVE_REDIRECT = "http://127.0.0.1/cb"


async def native_client(env: ServerEnv) -> object:
    return await env.client(
        name="CloudDocs Desktop",
        client_type="public",
        native=True,
        redirect_uris=[NATIVE_REDIRECT, "http://[::1]/cb"],
    )


@pytest.mark.parametrize(
    "requested",
    ["http://127.0.0.1:51004/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb"],
)
async def test_native_loopback_redirect_any_port(server_env: ServerEnv, requested: str) -> None:
    env = server_env
    client = await native_client(env)
    await env.user()
    flow = await env.authorize(env.browser(), client, redirect_uri=requested)  # type: ignore[arg-type]
    assert flow.response.status_code == 303
    assert flow.location.startswith(requested + "?code=")
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": requested,
    }
    response = await env.token(client, form, auth="none")  # type: ignore[arg-type]
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/cb?x=1",
        "http://127.0.0.1:51004/other",
        "http://127.0.0.1:51004/cb/",
        "http://localhost:51004/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://127.0.0.1.evil.example:51004/cb",
        "http://127.0.0.1:80@evil.example/cb",
        "http://evil.example@127.0.0.1:51004/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:51004/cb#f",
        "https://127.0.0.1:51004/cb",
        "http://127.0.0.2:51004/cb",
        "http://[::1]:51004/other",
    ],
)
async def test_native_loopback_redirect_refuses_other_uris_bcp02(
    server_env: ServerEnv, requested: str
) -> None:
    env = server_env
    client = await native_client(env)
    params, _ = env.authorize_params(client, redirect_uri=requested)  # type: ignore[arg-type]
    assert_page(await get_authorize(env.browser(), params))
    await assert_nothing_stored(env)


async def test_loopback_other_port_refused_for_non_native_client(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(
        client_type="public", redirect_uris=["http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"]
    )
    for requested in ("http://127.0.0.1:51004/cb", "http://127.0.0.1:8081/cb"):
        params, _ = env.authorize_params(client, redirect_uri=requested)
        assert_page(await get_authorize(env.browser(), params))
    await assert_nothing_stored(env)


async def test_localhost_registration_does_not_enable_any_port(server_env: ServerEnv) -> None:
    """Only loopback IP literals match on any port; ``localhost`` is matched exactly."""
    env = server_env
    client = await env.client(
        client_type="public", native=True, redirect_uris=["http://localhost/cb"]
    )
    params, _ = env.authorize_params(client, redirect_uri="http://localhost:51004/cb")
    assert_page(await get_authorize(env.browser(), params))


# -- BCP-05: a bad client/redirect pair never redirects, whatever else is wrong --------------


@pytest.mark.parametrize(
    "extra",
    [
        {"response_type": "bogus"},
        {"scope": "bogus"},
        {"code_challenge": None},
        {"prompt": "none"},
        {"response_type": "token"},
    ],
)
async def test_bad_redirect_uri_with_other_errors_shows_page_bcp05(
    server_env: ServerEnv, extra: dict[str, str | None]
) -> None:
    env = server_env
    client = await env.client()
    for client_id in (client.client.client_id, "ts_ci_unknown"):
        params, _ = env.authorize_params(
            client, client_id=client_id, redirect_uri="https://evil.example/cb", **extra
        )
        assert_page(await get_authorize(env.browser(), params))
    await assert_nothing_stored(env)


# -- step 2: errors sent to the redirect URI ---------------------------------------------------


async def redirect_error(
    env: ServerEnv, error: str, *, client: object = None, **overrides: str | None
) -> dict[str, str]:
    client = client or await env.client()
    before = await env.row_counts()
    params, _ = env.authorize_params(client, **overrides)  # type: ignore[arg-type]
    response = await get_authorize(env.browser(), params)
    result = assert_redirect_error(
        response,
        error,
        redirect_uri=params.get("redirect_uri", REDIRECT),
        state=params.get("state"),
        issuer=env.settings.issuer,
    )
    assert await env.row_counts() == before
    return result


async def test_missing_response_type_is_invalid_request(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_request", response_type=None)


@pytest.mark.parametrize(
    "response_type",
    ["token", "id_token token", "code token", "code id_token token", "id_token", "bogus"],
)
async def test_implicit_and_hybrid_response_types_unsupported_bcp14(
    server_env: ServerEnv, response_type: str
) -> None:
    await redirect_error(server_env, "unsupported_response_type", response_type=response_type)


async def test_error_without_state_carries_no_state(server_env: ServerEnv) -> None:
    result = await redirect_error(
        server_env, "unsupported_response_type", response_type="token", state=None
    )
    assert "state" not in result


async def test_hostile_state_is_echoed_exactly(server_env: ServerEnv) -> None:
    """O21-40: ``state`` is URL-encoded in the Location and comes back byte for byte."""
    state = '"><script>alert(1)</script>&x=1#frag é'
    result = await redirect_error(
        server_env, "unsupported_response_type", response_type="token", state=state
    )
    assert result["state"] == state


async def test_missing_code_challenge_is_invalid_request_o21_01(server_env: ServerEnv) -> None:
    await redirect_error(
        server_env, "invalid_request", code_challenge=None, code_challenge_method=None
    )


async def test_confidential_client_needs_pkce_too(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(client_type="confidential")
    await redirect_error(env, "invalid_request", client=client, code_challenge=None)


async def test_public_client_needs_pkce(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(client_type="public")
    await redirect_error(env, "invalid_request", client=client, code_challenge=None)


async def test_empty_code_challenge_counts_as_missing_o21_21(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_request", code_challenge="")


@pytest.mark.parametrize("method", ["plain", "s256", "S512", "", None])
async def test_code_challenge_method_must_be_s256_w58(
    server_env: ServerEnv, method: str | None
) -> None:
    await redirect_error(server_env, "invalid_request", code_challenge_method=method)


async def test_plain_challenge_equal_to_verifier_refused(server_env: ServerEnv) -> None:
    verifier, _ = pkce_pair()
    await redirect_error(
        server_env, "invalid_request", code_challenge=verifier, code_challenge_method="plain"
    )


async def test_method_without_challenge_is_invalid_request_w59(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_request", code_challenge=None)


@pytest.mark.parametrize(
    "challenge",
    [
        "a" * 42,
        "a" * 44,
        "a" * 128,
        "a" * 42 + "=",
        "a" * 41 + "+/",
        "a" * 42 + ".",
        "a" * 42 + "~",
    ],
)
async def test_bad_challenge_length_or_alphabet_w61(server_env: ServerEnv, challenge: str) -> None:
    await redirect_error(server_env, "invalid_request", code_challenge=challenge)


async def test_scope_not_allowed_is_invalid_scope(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(scopes=["docs:read"])
    await redirect_error(env, "invalid_scope", client=client, scope="docs:write")


async def test_unknown_scope_is_invalid_scope(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_scope", scope="docs:read admin")


async def test_malformed_scope_is_invalid_scope(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_scope", scope="docs:read  docs:write")


async def test_unknown_resource_is_invalid_target(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_target", resource="https://unknown.example")


async def test_client_without_code_grant_is_unauthorized_client(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(grant_types=["client_credentials"], redirect_uris=[REDIRECT])
    await redirect_error(env, "unauthorized_client", client=client)


@pytest.mark.parametrize("name", ["scope", "state", "code_challenge", "response_type"])
async def test_duplicated_parameter_is_invalid_request_redirected(
    server_env: ServerEnv, name: str
) -> None:
    """RFC 6749 §3.1: a parameter sent twice is ``invalid_request``; the redirect URI itself is
    trustworthy, so the error goes there (without the ambiguous state when state is doubled)."""
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    query = urlencode(params) + "&" + urlencode({name: params[name]})
    response = await get_authorize(env.browser(), query)
    expected_state = None if name == "state" else params["state"]
    result = assert_redirect_error(
        response,
        "invalid_request",
        redirect_uri=REDIRECT,
        state=expected_state,
        issuer=env.settings.issuer,
    )
    assert name in result["error_description"]
    await assert_nothing_stored(env)


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
async def test_duplicated_client_id_or_redirect_uri_shows_page(
    server_env: ServerEnv, name: str
) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    query = urlencode(params) + "&" + urlencode({name: params[name]})
    assert_page(await get_authorize(env.browser(), query))
    await assert_nothing_stored(env)


@pytest.mark.parametrize(
    ("name", "error"),
    [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")],
)
async def test_request_objects_refused(server_env: ServerEnv, name: str, error: str) -> None:
    value = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImRvY3M6d3JpdGUifQ."
    if name == "request_uri":
        value = "https://evil.example/request.jwt"
    await redirect_error(server_env, error, **{name: value})


async def test_unsupported_response_mode_refused(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "invalid_request", response_mode="form_post")


async def test_unknown_parameter_is_ignored(server_env: ServerEnv) -> None:
    """O21-21 / oidcc-ensure-request-with-unknown-parameter-succeeds."""
    env = server_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client, extra="foobar")
    assert "code" in flow.result


async def test_scope_order_does_not_matter(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client, scope="docs:write docs:read")
    assert "code" in flow.result


async def test_success_response_carries_code_state_and_iss_rfc9207(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client)
    result = flow.result
    assert set(result) == {"code", "state", "iss"}
    assert result["state"] == flow.params["state"]
    assert result["iss"] == env.settings.issuer
    assert result["code"].startswith("ts_ac_")
    assert flow.params["code_challenge"] not in flow.location


async def test_code_never_issued_without_login_o21_38(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    await env.user()
    flow = await env.start_authorize(env.browser(), client)
    assert flow.location.startswith("/login?")
    assert await env.count("ts_authorization_codes") == 0


async def test_prompt_none_without_session_is_login_required(server_env: ServerEnv) -> None:
    await redirect_error(server_env, "login_required", prompt="none")


async def test_long_state_is_echoed_w78(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    state = "s" * 384
    flow = await env.authorize(env.browser(), client, state=state)
    assert flow.result["state"] == state


async def test_oversized_state_never_500(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    for size in (3000, 60_000):
        params, _ = env.authorize_params(client, state="s" * size)
        response = await get_authorize(env.browser(), params)
        assert 400 <= response.status_code < 500 or response.status_code == 302
        location = response.headers.get("location", "")
        if location:
            assert location.startswith(REDIRECT + "?")
            assert query_of(location)["error"] == "invalid_request"
            assert "state" not in query_of(location)


async def test_resource_parameter_selects_another_api(server_env: ServerEnv) -> None:
    env = server_env
    other = "https://other.api.test"
    await env.api()
    await env.admin.create_api(identifier=other, scopes=["docs:read"])
    # the client must be registered for the other API (before round two any client could ask
    # for any registered API: that was the bug, see tests/security/test_authorization_matrix.py)
    client = await env.client(apis=[other])
    await env.user()
    flow = await env.authorize(env.browser(), client, resource=other)
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    claims = await env.decode_access_token(response.json()["access_token"], audience=other)
    assert claims["aud"] == other
    # A scope the chosen API does not define is refused even though the client may use it.
    await redirect_error(env, "invalid_scope", client=client, resource=other, scope="docs:write")


async def test_resource_default_is_client_api(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client)
    response = await env.redeem(client, flow.code, flow.verifier)
    claims = await env.decode_access_token(response.json()["access_token"])
    assert claims["aud"] == API


# -- CORS (RFC 9700 §2.6, OAuth 2.1 §3.1) ------------------------------------------------------


async def test_no_cors_at_authorization_endpoint_bcp26(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    ua = env.browser()
    headers = {"Origin": "https://evil.example"}
    response = await ua.get("/authorize?" + urlencode(params), headers=headers)
    assert response.status_code == 302
    preflight = await ua.options(
        "/authorize",
        headers={**headers, "Access-Control-Request-Method": "GET"},
    )
    for r in (response, preflight):
        assert not any(h.lower().startswith("access-control-") for h in r.headers), r.headers


async def test_authorization_endpoint_accepts_post_per_openid_connect(
    server_env: ServerEnv,
) -> None:
    """OpenID Connect Core §3.1.2.1: GET and POST; after a POST the redirect is a 303."""
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    response = await env.browser().post("/authorize", data=params)
    assert response.status_code == 303
    assert response.headers["location"].startswith(env.settings.login_path + "?txn=")
    wrong_type = await env.browser().post(
        "/authorize", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 400
    assert "location" not in wrong_type.headers


async def test_post_authorization_request_follows_the_same_rules(server_env: ServerEnv) -> None:
    """A POSTed request gets the same checks: bad client/redirect pairs are a page, other
    errors go to the redirect URI (with 303), a doubled redirect_uri is a page."""
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    bad, _ = env.authorize_params(client, redirect_uri="https://evil.example/cb")
    assert_page(await env.browser().post("/authorize", data=bad))
    wrong, _ = env.authorize_params(client, response_type="token")
    assert_redirect_error(
        await env.browser().post("/authorize", data=wrong),
        "unsupported_response_type",
        redirect_uri=REDIRECT,
        state=wrong["state"],
        issuer=env.settings.issuer,
        status=303,
    )
    doubled = urlencode(params) + "&" + urlencode({"redirect_uri": REDIRECT})
    response = await env.browser().post(
        "/authorize",
        content=doubled,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_page(response)
    assert await env.count("ts_interactions") == 0


async def test_percent_encoded_redirect_uri_is_decoded_once(server_env: ServerEnv) -> None:
    """The exact registered URI sent percent-encoded (as every client does) matches."""
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    params.pop("redirect_uri")
    query = urlencode(params) + "&redirect_uri=" + quote(REDIRECT, safe="")
    response = await get_authorize(env.browser(), query)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?")


async def test_error_description_never_echoes_disallowed_characters(
    server_env: ServerEnv,
) -> None:
    """RFC 6749 §4.1.2.1: ``error_description`` is limited to %x20-21 / %x23-5B / %x5D-7E, also
    when it names a parameter the client sent."""
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    name = 'é"\\<x>'
    query = urlencode(params) + "&" + urlencode([(name, "1"), (name, "2")])
    response = await get_authorize(env.browser(), query)
    result = assert_redirect_error(
        response,
        "invalid_request",
        redirect_uri=REDIRECT,
        state=params["state"],
        issuer=env.settings.issuer,
    )
    for ch in result["error_description"]:
        assert 0x20 <= ord(ch) <= 0x7E, repr(ch)
        assert ch not in '"\\', repr(ch)
