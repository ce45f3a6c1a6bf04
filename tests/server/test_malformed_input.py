"""Malformed input anywhere gets a 4xx with the RFC error, never a 500, and writes nothing.

Missing, duplicated, oversized or non-UTF-8 parameters, wrong content types, raw bytes, NULs,
oversized bodies and field floods (RFC 6749 §3.1/§3.2, security checklist W-73, W-76, W-78).
The ASGI transport re-raises any unhandled server exception, so a 500 would fail loudly.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.server.harness import (
    REDIRECT,
    ServerEnv,
    assert_oauth_error,
    assert_page,
    basic,
    hidden_fields,
)
from tests.support.asgi import http_scope
from tokensmith.core.registration import NewClient

FORM = "application/x-www-form-urlencoded"


async def raw_asgi(
    env: ServerEnv,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Call the app with exactly these bytes (no client-side encoding or validation)."""
    scope = http_scope(method, path, [(b"host", b"as.test"), *(headers or [])], query_string=query)
    sent = False
    status = 0
    response_headers: dict[bytes, bytes] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update(dict(message.get("headers", [])))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await env.app(scope, receive, send)
    return status, response_headers, b"".join(chunks)


async def ready_code(env: ServerEnv) -> tuple[NewClient, dict[str, str], dict[str, str]]:
    """A client, a valid token request body for a fresh code, and its Basic header."""
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client)
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    return client, form, headers


async def post_token(
    env: ServerEnv, content: bytes | str, headers: dict[str, str]
) -> httpx.Response:
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        return await c.post("/token", content=content, headers=headers)


async def assert_code_still_redeemable(
    env: ServerEnv, form: dict[str, str], headers: dict[str, str]
) -> None:
    """The refused requests wrote nothing: the code is unused and redeems now."""
    assert await env.count("ts_grants") == 0
    assert await env.count("ts_access_tokens") == 0
    response = await post_token(env, urlencode(form), {**headers, "Content-Type": FORM})
    assert response.status_code == 200, response.text


# -- token endpoint ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencodedx",
        "form",
    ],
)
async def test_token_wrong_content_type(server_env: ServerEnv, content_type: str | None) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    response = await post_token(env, urlencode(form), sent)
    assert_oauth_error(response, "invalid_request")
    await assert_code_still_redeemable(env, form, headers)


async def test_token_json_body_refused(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post("/token", json=form, headers=headers)
    assert_oauth_error(response, "invalid_request")
    await assert_code_still_redeemable(env, form, headers)


@pytest.mark.parametrize(
    "content_type", [f"{FORM}; charset=UTF-8", "Application/X-WWW-Form-Urlencoded"]
)
async def test_token_content_type_parameters_and_case_accepted(
    server_env: ServerEnv, content_type: str
) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    response = await post_token(env, urlencode(form), {**headers, "Content-Type": content_type})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "extra",
    [
        b"&code_verifier=%ff%fe",  # percent-encoded bytes that are not UTF-8
        b"&state=\xc3\xa9",  # raw non-ASCII bytes
        b"&state=\xff",
        b"&state=%00",  # NUL
        b"&state=a%0d%0ab",  # CR LF
        b"&x%00y=1",
        b"&%ff=1",
        b"&state=%e2%80%ae",  # bidi override (a format character)
    ],
)
async def test_token_bad_bytes_are_invalid_request(server_env: ServerEnv, extra: bytes) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode(form).encode() + extra
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
    if response.json()["error"] == "invalid_request":
        await assert_code_still_redeemable(env, form, headers)


@pytest.mark.parametrize(
    "name", ["code", "grant_type", "code_verifier", "client_id", "redirect_uri"]
)
async def test_token_duplicated_parameter_is_invalid_request(
    server_env: ServerEnv, name: str
) -> None:
    env = server_env
    client, form, headers = await ready_code(env)
    value = form.get(name, client.client.client_id)
    body = urlencode(form) + "&" + urlencode({name: value})
    if name not in form:
        body += "&" + urlencode({name: value})
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request")
    await assert_code_still_redeemable(env, form, headers)


async def test_token_body_of_2mb_is_413_w73(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode(form) + "&pad=" + "a" * (2 * 1024 * 1024)
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request", 413)
    await assert_code_still_redeemable(env, form, headers)


async def test_token_streamed_body_without_length_is_413(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)

    async def chunks():  # type: ignore[no-untyped-def]
        yield urlencode(form).encode()
        for _ in range(64):
            yield b"&pad=" + b"a" * 32768

    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post(
            "/token", content=chunks(), headers={**headers, "Content-Type": FORM}
        )
    assert_oauth_error(response, "invalid_request", 413)
    await assert_code_still_redeemable(env, form, headers)


async def test_token_declared_length_too_large_is_413_before_reading(
    server_env: ServerEnv,
) -> None:
    env = server_env
    status, _, body = await raw_asgi(
        env,
        "POST",
        "/token",
        headers=[(b"content-type", FORM.encode()), (b"content-length", b"99999999")],
        body=b"grant_type=authorization_code",
    )
    assert status == 413
    assert b"invalid_request" in body


async def test_token_bad_content_length_is_400(server_env: ServerEnv) -> None:
    env = server_env
    status, headers, body = await raw_asgi(
        env,
        "POST",
        "/token",
        headers=[(b"content-type", FORM.encode()), (b"content-length", b"-5")],
        body=b"grant_type=authorization_code",
    )
    assert status == 400
    assert headers[b"content-type"].startswith(b"application/json")
    assert b"invalid_request" in body


async def test_token_100_fields_is_invalid_request_w76(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode(form) + "".join(f"&f{i}=1" for i in range(100))
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request")
    await assert_code_still_redeemable(env, form, headers)


async def test_token_field_flood_is_refused_quickly_w76(server_env: ServerEnv) -> None:
    """100 000 empty fields fit in no body the endpoint accepts."""
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode(form) + "&" * 100_000
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert response.status_code in (400, 413)
    assert response.json()["error"] == "invalid_request"


async def test_token_oversized_value_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode({**form, "code_verifier": "a" * 5000})
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request")
    await assert_code_still_redeemable(env, form, headers)


async def test_token_oversized_name_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    body = urlencode(form) + "&" + "n" * 300 + "=1"
    response = await post_token(env, body, {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request")


async def test_token_empty_body_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    _, _, headers = await ready_code(env)
    response = await post_token(env, b"", {**headers, "Content-Type": FORM})
    assert_oauth_error(response, "invalid_request")


async def test_token_empty_values_count_as_missing(server_env: ServerEnv) -> None:
    env = server_env
    _, form, headers = await ready_code(env)
    response = await post_token(
        env, urlencode({**form, "grant_type": ""}), {**headers, "Content-Type": FORM}
    )
    assert_oauth_error(response, "invalid_request")
    response = await post_token(
        env, urlencode({**form, "code_verifier": ""}), {**headers, "Content-Type": FORM}
    )
    assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_token_other_methods_refused(server_env: ServerEnv, method: str) -> None:
    env = server_env
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.request(method, "/token")
    assert response.status_code == 405
    assert "access_token" not in response.text


# -- authorization endpoint --------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        b"&state=%ff",
        b"&state=\xc3\xa9",
        b"&state=%00",
        b"&scope=docs%3Aread%0a",
        b"&%ff=1",
        b"&" * 200,
        b"&state=" + b"s" * 70_000,
    ],
)
async def test_authorize_bad_query_bytes_never_500(server_env: ServerEnv, extra: bytes) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    before = await env.row_counts()
    status, headers, _ = await raw_asgi(
        env, "GET", "/authorize", query=urlencode(params).encode() + extra
    )
    assert 400 <= status < 500 or status == 302, status
    if status == 302:
        # Only ever to the registered redirect URI, with an error.
        assert headers[b"location"].startswith(REDIRECT.encode() + b"?error=")
    assert await env.row_counts() == before


async def test_authorize_many_scopes_refused_w76(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client, scope=" ".join(["docs:read"] * 60))
    response = await env.browser().get("/authorize", params=params)
    assert response.status_code == 302
    assert "error=invalid_scope" in response.headers["location"]


async def test_authorize_empty_query_is_page(server_env: ServerEnv) -> None:
    env = server_env
    assert_page(await env.browser().get("/authorize"))


# -- login and consent forms -------------------------------------------------------------------


async def login_form(env: ServerEnv) -> tuple[httpx.AsyncClient, dict[str, str]]:
    client = await env.client()
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    page = await ua.get(flow.location)
    return ua, hidden_fields(page.text)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"username=alice", "application/json", 400),
        (b"username=%ff", FORM, 400),
        (b"username=\xff", FORM, 400),
        (b"username=al%00ice", FORM, 400),
        (b"a=" + b"a" * (2 * 1024 * 1024), FORM, 413),
        (b"".join(b"&f%d=1" % i for i in range(100)), FORM, 400),
        (b"username=alice&username=bob", FORM, 400),
    ],
)
async def test_login_malformed_forms_never_500(
    server_env: ServerEnv, content: bytes, content_type: str, status: int
) -> None:
    env = server_env
    ua, fields = await login_form(env)
    body = urlencode({**fields, "password": "correct horse battery"}).encode() + b"&" + content
    response = await ua.post("/login", content=body, headers={"Content-Type": content_type})
    assert_page(response, status)
    assert await env.count("ts_sessions") == 0


async def test_login_overlong_username_and_password_never_500(server_env: ServerEnv) -> None:
    env = server_env
    ua, fields = await login_form(env)
    for username, password in (("a" * 4000, "x"), ("alice", "p" * 4000), ("\u200balice", "x")):
        response = await ua.post(
            "/login", data={**fields, "username": username, "password": password}
        )
        assert response.status_code in (200, 400, 401)
        assert "location" not in response.headers
    assert await env.count("ts_sessions") == 0


async def test_consent_malformed_form_never_500(server_env: ServerEnv) -> None:
    env = server_env
    ua, fields = await login_form(env)
    login = await ua.post(
        "/login", data={**fields, "username": "alice", "password": "correct horse battery"}
    )
    page = await ua.get(login.headers["location"])
    consent_fields = hidden_fields(page.text)
    for body, content_type in (
        (urlencode({**consent_fields, "decision": "allow"}).encode() + b"&decision=deny", FORM),
        (urlencode(consent_fields).encode() + b"&decision=%ff", FORM),
        (b'{"decision": "allow"}', "application/json"),
    ):
        response = await ua.post("/consent", content=body, headers={"Content-Type": content_type})
        assert_page(response)
    assert await env.count("ts_authorization_codes") == 0
    assert await env.count("ts_consents") == 0


@pytest.mark.parametrize(
    "cookie",
    [
        b"__Host-tokensmith_as_browser=" + b"x" * 5000,
        b"__Host-tokensmith_as_session=ts_ss_%ff%00",
        b"__Host-tokensmith_as_session=" + b"\xff\xfe",
        b"__Host-tokensmith_as_browser=; __Host-tokensmith_as_session=",
        b"garbage",
    ],
)
async def test_malformed_cookies_never_500(server_env: ServerEnv, cookie: bytes) -> None:
    env = server_env
    client = await env.client()
    params, _ = env.authorize_params(client)
    status, headers, _ = await raw_asgi(
        env, "GET", "/authorize", query=urlencode(params).encode(), headers=[(b"cookie", cookie)]
    )
    assert status == 302
    assert headers[b"location"].startswith(b"/login?txn=")
    status, _, _ = await raw_asgi(
        env, "GET", "/login", query=b"txn=ts_ix_x", headers=[(b"cookie", cookie)]
    )
    assert status == 400


@pytest.mark.parametrize(
    "txn",
    [
        b"txn=%ff",
        b"txn=" + b"t" * 5000,
        b"txn=a&txn=b",
        b"",
        b"txn=%00",
        b"txn=ts_ix_%00",
        b"txn=ts_ix_abc%0d%0a",
        b"txn=ts_ix_%e2%80%ae",
    ],
)
async def test_bad_transaction_ids_show_expired_page(server_env: ServerEnv, txn: bytes) -> None:
    env = server_env
    for path in ("/login", "/consent"):
        status, headers, _ = await raw_asgi(env, "GET", path, query=txn)
        assert status == 400, (path, txn, status)
        assert headers[b"content-type"].startswith(b"text/html")
