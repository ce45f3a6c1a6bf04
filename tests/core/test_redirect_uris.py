"""``core.redirect_uris``: what may be registered, and exact matching with the native-app
loopback exception (RFC 9700 §2.1/§4.1.3, RFC 8252 §7.1/§7.3, OAuth 2.1 §2.3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.errors import InvalidRedirectUri
from tokensmith.core.redirect_uris import check_registrable, find_match, is_match

REGISTERED = "https://rp.test/cb"


@pytest.mark.parametrize(
    ("uri", "native"),
    [
        ("https://rp.test/cb", False),
        ("https://rp.test:8443/cb?tenant=a", False),
        ("http://127.0.0.1/cb", True),
        ("http://127.0.0.1:8080/cb", False),
        ("http://[::1]/cb", True),
        ("http://localhost/cb", True),
        ("com.example.app:/cb", True),
    ],
)
def test_registrable(uri: str, native: bool) -> None:
    assert check_registrable(uri, native=native) == uri


@pytest.mark.parametrize(
    ("uri", "native"),
    [
        ("", False),
        ("http://rp.test/cb", False),
        ("http://localhost.evil.example/cb", False),
        ("http://127.0.0.1.nip.io/cb", False),
        ("https://rp.test/cb#frag", False),
        ("https://rp.test/cb#", False),
        ("/cb", False),
        ("rp.test/cb", False),
        ("https:///cb", False),
        ("https://*.rp.test/cb", False),
        ("https://rp.test/cb ", False),
        ("https://rp.test/c\x00b", False),
        ("https://rp.test\\@evil.example/cb", False),
        ("https://user:pw@rp.test/cb", False),
        ("https://rp.test:0/cb", False),
        ("https://rp.test:99999/cb", False),
        ("javascript:alert(1)", False),
        ("data:text/html,x", True),
        ("myapp:/cb", True),
        ("com.example.app:/cb", False),
        ("com.example.app://host/cb", True),
        ("https://rp.test/" + "a" * 2000, False),
    ],
)
def test_not_registrable(uri: str, native: bool) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_registrable(uri, native=native)


@pytest.mark.parametrize(
    "requested",
    [
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
        " https://rp.test/cb",
        "https://rp.test/cb\x00",
    ],
)
def test_exact_match_only(requested: str) -> None:
    for native in (False, True):
        assert not is_match(requested, REGISTERED, native=native)


@pytest.mark.parametrize(
    ("requested", "registered"),
    [
        ("http://127.0.0.1:51004/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8080/cb"),
        ("http://[::1]:1/cb", "http://[::1]/cb"),
        ("http://127.0.0.1:65535/cb?x=1", "http://127.0.0.1/cb?x=1"),
    ],
)
def test_native_loopback_any_port(requested: str, registered: str) -> None:
    assert is_match(requested, registered, native=True)
    assert not is_match(requested, registered, native=False)


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/cb?x=1",
        "http://127.0.0.1:51004/other",
        "http://localhost:51004/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://127.0.0.1:80@evil.example/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:51004/cb#x",
        "https://127.0.0.1:51004/cb",
        "http://[::1]:51004/cb",
    ],
)
def test_native_loopback_refuses_everything_else(requested: str) -> None:
    assert not is_match(requested, "http://127.0.0.1/cb", native=True)


def test_localhost_is_matched_exactly_even_for_native_apps() -> None:
    assert is_match("http://localhost/cb", "http://localhost/cb", native=True)
    assert not is_match("http://localhost:5000/cb", "http://localhost/cb", native=True)


def test_find_match() -> None:
    registered = ("https://rp.test/a", "http://127.0.0.1/cb")
    assert find_match("https://rp.test/a", registered, native=False) == "https://rp.test/a"
    assert find_match("http://127.0.0.1:9/cb", registered, native=True) == "http://127.0.0.1/cb"
    assert find_match("http://127.0.0.1:9/cb", registered, native=False) is None


URI_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@settings(max_examples=300, deadline=None)
@given(URI_TEXT, URI_TEXT)
def test_non_native_match_is_string_equality_property(requested: str, registered: str) -> None:
    assert is_match(requested, registered, native=False) == (requested == registered)


@settings(max_examples=300, deadline=None)
@given(URI_TEXT)
def test_native_match_against_https_is_string_equality_property(requested: str) -> None:
    """The loopback exception never widens a non-loopback registration."""
    assert is_match(requested, REGISTERED, native=True) == (requested == REGISTERED)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=65535), st.sampled_from(["/cb", "/cb?x=1", "/a/b"]))
def test_native_loopback_any_valid_port_property(port: int, path: str) -> None:
    assert is_match(f"http://127.0.0.1:{port}{path}", f"http://127.0.0.1{path}", native=True)
    assert not is_match(f"http://127.0.0.1:{port}{path}x", f"http://127.0.0.1{path}", native=True)


@settings(max_examples=300, deadline=None)
@given(URI_TEXT)
def test_native_loopback_match_keeps_host_and_path_property(suffix: str) -> None:
    """Whatever follows the port, a match means the rest is the registered path exactly."""
    requested = "http://127.0.0.1:5000" + suffix
    if is_match(requested, "http://127.0.0.1/cb", native=True):
        assert suffix == "/cb"
