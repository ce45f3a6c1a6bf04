"""``SecurityHeaders.headers``: an API answer that sets none of the security headers gets a
precomputed list appended; every other response goes through the general merge. Both must give
the same headers for every response."""

from __future__ import annotations

import itertools

import pytest

from tokensmith.server.middleware import API_CSP, CSP, SecurityHeaders

OPTIONAL = [
    (b"content-type", b"application/json"),
    (b"Content-Type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"Content-Security-Policy", b"default-src 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"Referrer-Policy", b"origin"),
    (b"strict-transport-security", b"max-age=60"),
    (b"location", b"https://client.example/cb?code=x"),
]


@pytest.mark.parametrize("https", [False, True])
@pytest.mark.parametrize("status", [200, 204, 302, 303, 400, 401, 500])
def test_the_shortcut_gives_the_general_answer(https: bool, status: int) -> None:
    middleware = SecurityHeaders(https=https)
    base = [(b"content-length", b"2"), (b"x-request-id", b"abc")]
    for size in range(3):
        for extra in itertools.combinations(OPTIONAL, size):
            given = [*base, *extra]
            assert middleware.headers(status, given) == middleware._merged(status, given), extra


def test_an_api_answer_gets_the_api_headers_appended() -> None:
    middleware = SecurityHeaders(https=True)
    given = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    headers = dict(middleware.headers(200, given))
    assert headers[b"content-security-policy"] == API_CSP
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"strict-transport-security"].startswith(b"max-age=")


def test_a_page_and_a_redirect_get_the_page_headers() -> None:
    middleware = SecurityHeaders(https=False)
    page = dict(middleware.headers(200, [(b"content-type", b"text/html; charset=utf-8")]))
    assert page[b"content-security-policy"] == CSP.encode()
    assert page[b"cache-control"] == b"no-store"
    redirect = dict(middleware.headers(302, [(b"location", b"https://client.example/cb?code=x")]))
    assert redirect[b"cache-control"] == b"no-store"
    assert b"strict-transport-security" not in redirect
