"""The login and consent pages through HTTP: headers, CSRF, browser binding, cookies, session
fixation, user enumeration, consent memory, 303 redirects and escaping.

RFC 9700 §4.12 (303, never 307), §4.16 (clickjacking), §4.2.4 (Referer); security checklist
W-01..W-09, W-24, W-26..W-28, W-31, W-32, W-34, W-43, BCP-08, BCP-29.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest

from tests.server.harness import (
    PASSWORD,
    REDIRECT,
    ServerEnv,
    assert_page,
    assert_redirect_error,
    hidden_fields,
    query_of,
)
from tests.support.pages import (
    BROWSER_COOKIE,
    SESSION_COOKIE,
    assert_page_headers,
    assert_same_origin_resources,
    open_consent,
    open_login,
    set_cookies,
    submit_login,
)

# -- headers (W-09, BCP-29) --------------------------------------------------------------------


async def test_login_and_consent_pages_security_headers_w09(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    login_page, _, _ = await open_login(env, ua, client)
    assert_page_headers(login_page, script=True)
    assert_same_origin_resources(login_page.text, script=True)
    consent_page, _, _ = await open_consent(env, env.browser(), client)
    assert_page_headers(consent_page)
    assert_same_origin_resources(consent_page.text)
    assert "CloudDocs Web" in consent_page.text
    assert "docs:read" in consent_page.text


async def test_error_pages_security_headers(server_env: ServerEnv) -> None:
    env = server_env
    response = await env.browser().get("/authorize?client_id=nobody")
    assert_page(response)
    assert_page_headers(response)
    expired = await env.browser().get("/login?txn=ts_ix_nothing")
    assert_page(expired)
    assert_page_headers(expired)


async def test_hsts_on_https_issuer(server_env: ServerEnv) -> None:
    response = await server_env.browser().get("/jwks.json")
    assert "max-age=" in response.headers["strict-transport-security"]


# -- credentials and enumeration (W-24, W-26) ----------------------------------------------


async def test_correct_password_logs_in(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields)
    assert response.status_code == 303
    assert SESSION_COOKIE in set_cookies(response)
    assert await env.count("ts_sessions") == 1


@pytest.mark.parametrize("login", ["alice@example.com", "ALICE", " alice "])
async def test_login_by_email_or_any_case(server_env: ServerEnv, login: str) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields, username=login)
    assert response.status_code == 303, response.text


async def test_wrong_password_and_unknown_user_look_the_same_w24(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    answers = []
    for username, password in (("alice", "wrong password!"), ("mallory", PASSWORD)):
        ua = env.browser()
        _, fields, _ = await open_login(env, ua, client)
        response = await submit_login(ua, fields, username=username, password=password)
        body = response.text.replace(fields["csrf_token"], "CSRF").replace(username, "USER")
        body = re.sub(r"ts_ix_[\w-]+", "TXN", body)
        answers.append((response.status_code, body, sorted(set_cookies(response))))
        assert "not correct" in response.text
        assert "location" not in response.headers
    assert answers[0] == answers[1]
    assert answers[0][0] in (200, 400, 401)
    assert await env.count("ts_sessions") == 0


async def test_disabled_user_cannot_log_in(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    user = await env.user()
    await env.admin.set_disabled(user.username, True)
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields)
    assert "not correct" in response.text
    assert "location" not in response.headers
    assert SESSION_COOKIE not in set_cookies(response)
    assert await env.count("ts_sessions") == 0


async def test_disabled_user_session_is_not_honoured(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    user = await env.user()
    ua = env.browser()
    first = await env.authorize(ua, client)
    assert "code" in first.result
    await env.admin.set_disabled(user.username, True)
    again = await env.start_authorize(ua, client)
    assert again.location.startswith("/login?")


async def test_login_hint_prefills_username_escaped_w43(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    hint = '"><script>alert(1)</script>'
    page, _, _ = await open_login(env, env.browser(), client, login_hint=hint)
    assert "<script>alert(1)" not in page.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
    page, _, _ = await open_login(env, env.browser(), client, login_hint="alice@example.com")
    assert 'value="alice@example.com"' in page.text


async def test_unknown_login_hint_same_page_as_known_w26(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    pages = []
    for hint in ("alice", "nobody00"):
        page, fields, _ = await open_login(env, env.browser(), client, login_hint=hint)
        text = page.text.replace(fields["csrf_token"], "").replace(fields["txn"], "")
        pages.append((page.status_code, text.replace(hint, "HINT")))
    assert pages[0] == pages[1]


async def test_submitted_username_is_escaped_in_error_page(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields, username='"><img src=x onerror=alert(1)>')
    assert "<img" not in response.text


# -- CSRF and browser binding (W-01..W-06, W-31) --------------------------------------------


async def test_login_without_csrf_token_refused_w01(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    del fields["csrf_token"]
    response = await submit_login(ua, fields)
    assert_page(response, 403)
    assert SESSION_COOKIE not in set_cookies(response)
    assert await env.count("ts_sessions") == 0


async def test_login_with_wrong_csrf_token_refused(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    fields["csrf_token"] = "0" * 64
    response = await submit_login(ua, fields)
    assert_page(response, 403)
    assert await env.count("ts_sessions") == 0


async def test_login_with_other_browsers_csrf_token_refused_w02(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua, ua2 = env.browser(), env.browser()
    _, fields, _ = await open_login(env, ua, client)
    _, fields2, _ = await open_login(env, ua2, client)
    response = await submit_login(ua, {**fields, "csrf_token": fields2["csrf_token"]})
    assert_page(response, 403)
    # The attacker posting the victim's whole form from their own browser fails too.
    response = await submit_login(ua2, fields)
    assert response.status_code in (400, 403)
    assert "location" not in response.headers
    assert await env.count("ts_sessions") == 0


async def test_login_post_without_cookies_refused(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    _, fields, _ = await open_login(env, env.browser(), client)
    fresh = env.browser()
    response = await submit_login(fresh, fields)
    assert_page(response, 403)
    assert await env.count("ts_sessions") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://as.test"},
        {"Origin": "https://as.test.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_login_post_refused_w03(
    server_env: ServerEnv, headers: dict[str, str]
) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields, headers=headers)
    assert_page(response, 403)
    assert await env.count("ts_sessions") == 0


async def test_same_origin_login_post_accepted(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    headers = {"Origin": "https://as.test", "Sec-Fetch-Site": "same-origin"}
    response = await submit_login(ua, fields, headers=headers)
    assert response.status_code == 303


async def test_consent_without_or_with_foreign_csrf_refused_w04(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_consent(env, ua, client)
    _, other_fields, _ = await open_consent(env, env.browser(), client)
    for csrf in (None, other_fields["csrf_token"]):
        form = {"txn": fields["txn"], "decision": "allow"}
        if csrf is not None:
            form["csrf_token"] = csrf
        response = await ua.post("/consent", data=form)
        assert_page(response, 403)
    response = await ua.post(
        "/consent", data={**fields, "decision": "allow"}, headers={"Origin": "https://evil.example"}
    )
    assert_page(response, 403)
    assert await env.count("ts_authorization_codes") == 0
    assert await env.count("ts_consents") == 0


async def test_consent_by_get_records_nothing_w05(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_consent(env, ua, client)
    response = await ua.get("/consent", params={**fields, "decision": "allow", "approve": "1"})
    assert response.status_code == 200
    assert await env.count("ts_consents") == 0
    assert await env.count("ts_authorization_codes") == 0


async def test_consent_transaction_of_other_browser_refused_w06(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    await env.user("bob")
    victim, attacker = env.browser(), env.browser()
    _, victim_fields, _ = await open_consent(env, victim, client)
    # The attacker, logged in themselves, submits the victim's transaction id.
    _, fields, _ = await open_login(env, attacker, client)
    await submit_login(attacker, fields, username="bob")
    response = await attacker.post("/consent", data={**victim_fields, "decision": "allow"})
    assert response.status_code in (400, 403)
    assert "location" not in response.headers
    page = await attacker.get(f"/consent?txn={victim_fields['txn']}")
    assert_page(page)
    assert "expired" in page.text
    assert await env.count("ts_authorization_codes") == 0


async def test_login_page_of_other_browser_is_expired_w31(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    flow = await env.start_authorize(env.browser(), client)
    page = await env.browser().get(flow.location)
    assert_page(page)
    assert "expired" in page.text
    assert "csrf_token" not in page.text


async def test_expired_interaction_shows_expired_page(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    env.clock.advance(env.settings.interaction_ttl + 1)
    response = await submit_login(ua, fields)
    assert_page(response)
    assert "expired" in response.text
    assert await env.count("ts_sessions") == 0


async def test_tampered_consent_fields_are_ignored_w07(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, params = await open_consent(env, ua, client)
    tampered = {
        **fields,
        "decision": "allow",
        "scope": "docs:read docs:write",
        "client_id": "ts_ci_other",
        "redirect_uri": "https://evil.example/cb",
        "code_challenge": "A" * 43,
    }
    response = await ua.post("/consent", data=tampered)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    token = await env.redeem(client, query_of(location)["code"], None, code_verifier="x")
    assert token.status_code == 400  # the stored challenge is the original one
    assert await env.scalar("SELECT scopes FROM ts_authorization_codes") == "docs:read"
    granted = await env.scalar("SELECT COUNT(*) FROM ts_consents WHERE scope = 'docs:write'")
    assert granted == 0
    assert params["scope"] == "docs:read"


# -- cookies and session (W-27, W-28, W-32, W-34) ------------------------------------------


async def test_cookie_flags_https_issuer_w34(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    page = await ua.get(flow.location)
    fields = hidden_fields(page.text)
    login = await submit_login(ua, fields)
    cookies = {**set_cookies(flow.response), **set_cookies(page), **set_cookies(login)}
    assert set(cookies) == {BROWSER_COOKIE, SESSION_COOKIE}
    for header in cookies.values():
        parsed = SimpleCookie()
        parsed.load(header)
        (morsel,) = parsed.values()
        assert morsel["httponly"] is True
        assert morsel["secure"] is True
        assert morsel["samesite"].lower() == "lax"
        assert morsel["path"] == "/"
        assert not morsel["domain"]
        assert len(header) < 4096
    assert not any("ts_ac_" in h or "eyJ" in h for h in cookies.values())


async def test_session_id_changes_at_each_login_w27(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    await env.user()
    ua = env.browser()
    first = await env.authorize(ua, client)
    assert "code" in first.result
    old_session = ua.cookies[SESSION_COOKIE]
    # Log in again in the same browser (prompt=login forces the form).
    _, fields, _ = await open_login(env, ua, client, prompt="login")
    response = await submit_login(ua, fields)
    assert response.status_code == 303
    new_session = ua.cookies[SESSION_COOKIE]
    assert new_session != old_session
    # The old session id is gone: replayed in another browser it authenticates nobody.
    replay = env.browser()
    replay.cookies.set(SESSION_COOKIE, old_session, domain="as.test")
    flow = await env.start_authorize(replay, client)
    assert flow.location.startswith("/login?")
    assert await env.count("ts_sessions") == 1


async def test_planted_session_cookie_is_not_adopted_w28(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    await env.user()
    ua = env.browser()
    planted = "ts_ss_" + "A" * 43
    ua.cookies.set(SESSION_COOKIE, planted, domain="as.test")
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields)
    assert response.status_code == 303
    assert ua.cookies[SESSION_COOKIE] != planted
    attacker = env.browser()
    attacker.cookies.set(SESSION_COOKIE, planted, domain="as.test")
    flow = await env.start_authorize(attacker, client)
    assert flow.location.startswith("/login?")


async def test_second_user_in_same_browser_gets_own_tokens_w32(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    alice = await env.user()
    bob = await env.user("bob")
    ua = env.browser()
    first = await env.authorize(ua, client)
    second = await env.start_authorize(ua, client, prompt="login")
    page = await ua.get(second.location)
    response = await submit_login(ua, hidden_fields(page.text), username="bob")
    code = query_of(response.headers["location"])["code"]
    subs = []
    for code_value, verifier in ((first.code, first.verifier), (code, second.verifier)):
        token = await env.redeem(client, code_value, verifier)
        subs.append((await env.decode_access_token(token.json()["access_token"]))["sub"])
    assert subs == [alice.id, bob.id]


async def test_http_issuer_cookies_have_no_host_prefix(server_env: ServerEnv) -> None:
    """For an http (loopback) issuer the cookies cannot be Secure, so no __Host- prefix."""
    from tests.server.harness import ServerEnv as Env

    settings = server_env.settings.model_copy(update={"issuer": "http://127.0.0.1:8000"})
    async with Env.start(settings, server_env.clock) as env:
        client = await env.client()
        flow = await env.start_authorize(env.browser(), client)
        (header,) = flow.response.headers.get_list("set-cookie")
        assert header.startswith("tokensmith_as_browser=")
        assert "secure" not in header.lower()
        assert "httponly" in header.lower()
        assert "samesite=lax" in header.lower()


# -- redirects after forms (BCP-08) ----------------------------------------------------------


async def test_form_posts_answer_303_never_307_bcp08(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    bad = await submit_login(ua, fields, password="wrong password")
    assert bad.status_code not in (307, 308)
    login = await submit_login(ua, fields)
    assert login.status_code == 303
    page = await ua.get(login.headers["location"])
    consent = await ua.post("/consent", data={**hidden_fields(page.text), "decision": "allow"})
    assert consent.status_code == 303
    assert consent.headers["location"].startswith(REDIRECT + "?code=")


# -- consent (W-08, access_denied) -------------------------------------------------------------


async def test_consent_deny_sends_access_denied(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, params = await open_consent(env, ua, client)
    response = await ua.post("/consent", data={**fields, "decision": "deny"})
    assert_redirect_error(
        response,
        "access_denied",
        redirect_uri=REDIRECT,
        state=params["state"],
        issuer=env.settings.issuer,
        status=303,
    )
    assert await env.count("ts_consents") == 0
    assert await env.count("ts_authorization_codes") == 0
    # The transaction is over: allowing it afterwards does nothing.
    again = await ua.post("/consent", data={**fields, "decision": "allow"})
    assert_page(again)
    assert await env.count("ts_authorization_codes") == 0


async def test_consent_is_remembered_per_scope(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    first = await env.authorize(ua, client, scope="docs:read")
    assert "code" in first.result
    # Same scope: no page, straight back to the client from /authorize.
    again = await env.start_authorize(ua, client, scope="docs:read")
    assert again.response.status_code == 302
    assert again.location.startswith(REDIRECT + "?code=")
    # A wider scope asks again.
    wider = await env.start_authorize(ua, client, scope="docs:read docs:write")
    assert urlsplit(wider.location).path == "/consent"
    page = await ua.get(wider.location)
    assert "docs:write" in page.text
    # Consent is per client: another client asks for the same scope.
    other = await env.client(name="Other app")
    other_flow = await env.start_authorize(ua, other, scope="docs:read")
    assert urlsplit(other_flow.location).path == "/consent"


async def test_consent_is_per_user(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    await env.user("bob")
    await env.authorize(env.browser(), client)
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields, username="bob")
    assert urlsplit(response.headers["location"]).path == "/consent"


async def test_first_party_client_skips_consent_w08(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_login(env, ua, client)
    response = await submit_login(ua, fields)
    assert response.status_code == 303
    assert response.headers["location"].startswith(REDIRECT + "?code=")
    assert await env.count("ts_consents") == 0


async def test_prompt_none_without_consent_is_consent_required(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    other = await env.client(name="Other app")
    await env.user()
    ua = env.browser()
    await env.authorize(ua, client)
    params, _ = env.authorize_params(other, prompt="none")
    response = await ua.get("/authorize", params=params)
    assert_redirect_error(
        response,
        "consent_required",
        redirect_uri=REDIRECT,
        state=params["state"],
        issuer=env.settings.issuer,
    )


async def test_consent_page_escapes_client_name_w37(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(name='<script>alert(1)</script>"><img src=x onerror=alert(1)>')
    await env.user()
    page, _, _ = await open_consent(env, env.browser(), client)
    assert "<script>alert" not in page.text
    assert "<img" not in page.text
    login, _, _ = await open_login(env, env.browser(), client)
    assert "<script>alert" not in login.text


async def test_consent_page_without_decision_shows_page_again(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    _, fields, _ = await open_consent(env, ua, client)
    response = await ua.post("/consent", data=fields)
    assert response.status_code == 200
    assert await env.count("ts_authorization_codes") == 0
    assert await env.count("ts_consents") == 0


async def test_redirects_carrying_codes_are_not_cacheable(server_env: ServerEnv) -> None:
    """Every redirect (to the login page with an interaction id, back to the client with a code
    or an error) carries ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``."""
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    page = await ua.get(flow.location)
    login = await submit_login(ua, hidden_fields(page.text))
    consent_page = await ua.get(login.headers["location"])
    consent = await ua.post(
        "/consent", data={**hidden_fields(consent_page.text), "decision": "allow"}
    )
    assert "code=" in consent.headers["location"]
    again = await env.start_authorize(ua, client)  # consent remembered: straight to the client
    assert "code=" in again.location
    error = await env.start_authorize(ua, client, response_type="token")
    assert "error=" in error.location
    for response in (flow.response, login, consent, again.response, error.response):
        assert response.status_code in (302, 303)
        assert "no-store" in response.headers.get("cache-control", ""), response.headers
        assert response.headers["referrer-policy"] == "no-referrer"
