"""``core.client_auth``: Basic header parsing and credential extraction (RFC 6749 §2.3)."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core import authentication
from tokensmith.core.client_auth import ClientCredentials, extract_credentials, parse_basic
from tokensmith.core.errors import InvalidClient, InvalidRequest


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_parse_basic_form_urlencoded() -> None:
    assert parse_basic(basic(b"my%3Aclient:s%2Bcret+x")) == ("my:client", "s+cret x")
    assert parse_basic("basic " + base64.b64encode(b"a:b").decode()) == ("a", "b")
    assert parse_basic(basic(b"a:")) == ("a", "")
    assert parse_basic(basic(b"a:b:c")) == ("a", "b:c")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!",
        "Basic YWJj",  # "abc": no colon
        basic(b":secret"),
        basic(b"\xff:\xfe"),
        basic(b"\x00:\x00"),
        basic(b"%00:secret"),
        basic(b"id:%0A"),
        "Basic " + base64.b64encode(b"a:b").decode()[:-1],
    ],
)
def test_parse_basic_malformed_is_invalid_client_with_challenge(header: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        parse_basic(header)
    assert refused.value.headers["WWW-Authenticate"].startswith("Basic")


def test_extract_one_method_per_request() -> None:
    header = basic(b"id:secret")
    creds = extract_credentials({}, header)
    assert (creds.client_id, creds.method, creds.secret) == ("id", "client_secret_basic", "secret")
    creds = extract_credentials({"client_id": "id", "client_secret": "s"}, None)
    assert (creds.method, creds.secret) == ("client_secret_post", "s")
    assert extract_credentials({"client_id": "id"}, None).method == "none"
    with pytest.raises(InvalidRequest):
        extract_credentials({"client_secret": "s"}, header)
    with pytest.raises(InvalidRequest):
        extract_credentials({"client_id": "other"}, header)
    with pytest.raises(InvalidClient):
        extract_credentials({}, None)
    assertion = {
        "client_assertion": "x.y.z",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    with pytest.raises(InvalidRequest):
        extract_credentials(assertion, header)
    with pytest.raises(InvalidRequest):
        extract_credentials({**assertion, "client_secret": "s"}, None)


def test_secret_is_not_in_repr() -> None:
    creds = extract_credentials({}, basic(b"id:very-secret"))
    assert "very-secret" not in repr(creds)


@settings(max_examples=300, deadline=None)
@given(
    st.text(min_size=1, max_size=40).filter(str.isprintable),
    st.text(max_size=40).filter(str.isprintable),
)
def test_basic_roundtrip_property(client_id: str, secret: str) -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, joined by ':', then Base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    assert parse_basic(basic(raw)) == (client_id, secret)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_header_parses_or_is_invalid_client_property(header: str) -> None:
    try:
        client_id, _ = parse_basic(header)
    except InvalidClient:
        pass
    else:
        assert client_id


# -- fuzzing (issue 10): only the OAuthError tree, whatever the input -------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(["Basic ", "basic ", "BASIC  ", " Basic "]))
def test_any_base64_payload_parses_or_is_invalid_client_property(raw: bytes, scheme: str) -> None:
    """Valid Base64 of anything: bytes that are not UTF-8, no colon, an empty id, %-escapes."""
    header = scheme + base64.b64encode(raw).decode()
    try:
        client_id, secret = parse_basic(header)
    except InvalidClient as exc:
        refused: InvalidClient | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
        return
    assert client_id
    assert isinstance(secret, str)


AUTH_PARAMS = st.dictionaries(
    st.sampled_from(["client_id", "client_secret", "client_assertion", "client_assertion_type"]),
    st.text(max_size=20) | st.just("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
)


@settings(max_examples=300, deadline=None)
@given(AUTH_PARAMS, st.none() | st.text(max_size=60) | st.binary(max_size=40).map(basic))
def test_extract_credentials_gives_one_method_or_an_oauth_error_property(
    params: dict[str, str], authorization: str | None
) -> None:
    try:
        creds = extract_credentials(params, authorization)
    except (InvalidClient, InvalidRequest):
        return
    assert creds.method in ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
    sent = [authorization is not None, "client_secret" in params, "client_assertion" in params]
    assert sum(sent) <= 1


def test_the_credentials_memo_compares_inputs_by_identity_never_by_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``core.authentication.credentials`` reuses a request's earlier result only for the very
    same input objects: an equal secret in a distinct string is read again (and so never
    compared by value with the one kept)."""
    calls: list[str | None] = []
    real = authentication.extract_credentials

    def counting(params: dict[str, str], authorization: str | None) -> ClientCredentials:
        calls.append(params.get("client_secret"))
        return real(params, authorization)

    monkeypatch.setattr(authentication, "extract_credentials", counting)

    async def one_request() -> None:
        secret = "s3cret-" + "x" * 20
        params = {"client_id": "c1", "client_secret": secret}
        first = authentication.credentials(params, None)
        assert authentication.credentials(params, None) is first  # the same objects: kept
        assert len(calls) == 1
        equal = {"client_id": "c1", "client_secret": "".join(["s3cret-", "x" * 20])}
        assert equal["client_secret"] == secret
        assert equal["client_secret"] is not secret
        again = authentication.credentials(equal, None)
        assert len(calls) == 2  # equal but distinct: read again, not matched by value
        assert again == first

    asyncio.run(one_request())  # a task of its own: the memo lives in the task's context
