"""``core.authorize``: parsing an authorization request never fails other than by the OAuth error
tree (a page error before the redirect URI is trusted, a redirectable error after)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.authorize import check_client_and_redirect, validate
from tokensmith.core.errors import AuthorizationPageError, InvalidRequest, OAuthError
from tokensmith.core.models import Api, AuthorizationRequest, Client
from tokensmith.core.params import parse_query

API = Api("https://api.test", "API", ("docs:read", "docs:write"), 0)
CLIENT = Client(
    client_id="c1",
    name="RP",
    client_type="public",
    redirect_uris=("https://rp.test/cb", "http://127.0.0.1/cb"),
    grant_types=("authorization_code",),
    scopes=("openid", "docs:read"),
    apis=(API.identifier,),
    token_endpoint_auth_method="none",
    native=True,
)
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGHSc-hWaA"
VALID = {
    "response_type": "code",
    "client_id": "c1",
    "redirect_uri": "https://rp.test/cb",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
    "scope": "docs:read",
}
NAMES = st.sampled_from(
    [
        *VALID,
        "state",
        "nonce",
        "prompt",
        "max_age",
        "login_hint",
        "resource",
        "response_mode",
        "request",
        "request_uri",
    ]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["code", "S256", "none login", "0", "²", "١٢", "9" * 11, CHALLENGE]),
)


def _parse(
    params: dict[str, str], duplicates: frozenset[str] = frozenset()
) -> AuthorizationRequest:
    target = check_client_and_redirect(params, duplicates, CLIENT)
    return validate(params, duplicates, target, {API.identifier: API})


def _assert_page_or_redirect(exc: OAuthError) -> None:
    """Before the redirect URI is trusted, a page; after it, an error for the client."""
    if not isinstance(exc, AuthorizationPageError):
        assert exc.redirectable, exc


def test_valid_request() -> None:
    request = _parse({**VALID, "state": "s-1", "nonce": "n-1"})
    assert request.client_id == "c1"
    assert request.redirect_uri == "https://rp.test/cb"
    assert request.redirect_uri_sent is True
    assert request.scopes == ("docs:read",)
    assert request.audience == API.identifier  # the client's only API, without resource
    assert request.code_challenge == CHALLENGE
    assert request.state == "s-1"
    assert request.nonce == "n-1"
    assert request.prompt == ()
    assert request.max_age is None
    assert request.hint_subject is None


@pytest.mark.parametrize("max_age", ["²", "¹⁰", "١٢", "-1", "1.5", "9" * 11, " 1"])
def test_max_age_outside_ascii_digits_is_invalid_request(max_age: str) -> None:
    """Regression: '²' passed ``str.isdigit()`` and then crashed ``int()`` (a 500)."""
    with pytest.raises(InvalidRequest) as refused:
        _parse({**VALID, "max_age": max_age})
    assert refused.value.redirectable


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NAMES, VALUES, max_size=12))
def test_any_parameters_give_a_request_or_an_oauth_error_property(
    overrides: dict[str, str],
) -> None:
    params = {k: v for k, v in {**VALID, **overrides}.items() if v}
    try:
        _parse(params)
    except OAuthError as exc:
        _assert_page_or_redirect(exc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_query_string_gives_a_request_or_an_oauth_error_property(raw: bytes) -> None:
    try:
        params, duplicates = parse_query(raw)
    except InvalidRequest:
        return
    try:
        _parse(params, duplicates)
    except OAuthError as exc:
        _assert_page_or_redirect(exc)
