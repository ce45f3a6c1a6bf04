"""``core.redirect_uris``: what may be registered, and exact matching with the native-app
loopback exception (RFC 9700 §2.1/§4.1.3, RFC 8252 §7.1/§7.3, OAuth 2.1 §2.3.1)."""

from __future__ import annotations

import re

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


# -- fuzzing (issue 10): registration and matching of any input -------------------------------

REGISTERED_URIS = [
    "https://rp.test/cb",
    "https://rp.test:8443/cb?tenant=a",
    "http://127.0.0.1/cb",
    "http://127.0.0.1:8080/cb",
    "http://[::1]/cb?x=1",
    "http://localhost/cb",
    "com.example.app:/cb",
]
URI_CHARS = st.sampled_from("aZ09:/?#@[]%.-_~+*\\ é\x00")
PORTS = st.one_of(
    st.integers(min_value=0, max_value=70000).map(str),
    st.text(st.sampled_from("0189\u0668\uff10\u00b2-+ "), max_size=6),
)
# RFC 8252 §7.3: a native app's loopback IP redirect, any port; the rest exactly as registered.
LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?([/?][^#]*)?")


@st.composite
def near_misses(draw: st.DrawFn, registered: str) -> str:
    """``registered`` with another port, userinfo, a suffix, upper case; or noise."""
    kind = draw(st.sampled_from(["port", "userinfo", "suffix", "case", "noise", "same"]))
    scheme, _, rest = registered.partition("://")
    if kind == "port" and rest:
        host = rest.split("/", 1)[0].split("?", 1)[0]
        tail = rest[len(host) :]
        bare = host if host.startswith("[") and host.endswith("]") else host.split(":", 1)[0]
        if host.startswith("[") and "]:" in host:
            bare = host.split("]:", 1)[0] + "]"
        port = draw(PORTS)
        return f"{scheme}://{bare}:{port}{tail}" if port else f"{scheme}://{bare}{tail}"
    if kind == "userinfo":
        return registered.replace("://", "://" + draw(st.text(URI_CHARS, max_size=6)) + "@", 1)
    if kind == "suffix":
        return registered + draw(st.text(URI_CHARS, min_size=1, max_size=6))
    if kind == "case":
        return registered.upper()
    if kind == "noise":
        return draw(st.text(URI_CHARS, max_size=40))
    return registered


@settings(max_examples=300, deadline=None)
@given(st.text(URI_CHARS, max_size=40) | st.sampled_from(REGISTERED_URIS), st.booleans())
def test_any_uri_is_registrable_unchanged_or_invalid_redirect_uri_property(
    uri: str, native: bool
) -> None:
    try:
        accepted = check_registrable(uri, native=native)
    except InvalidRedirectUri:
        return
    assert accepted == uri


@settings(max_examples=500, deadline=None)
@given(st.data(), st.sampled_from(REGISTERED_URIS), st.booleans())
def test_a_match_is_the_registered_uri_except_a_loopback_port_property(
    data: st.DataObject, registered: str, native: bool
) -> None:
    """RFC 9700 §4.1.3 / RFC 8252 §7.3: a matching URI equals the registered one, or (native app,
    http loopback IP) differs only by a valid port."""
    requested = data.draw(near_misses(registered))
    if not is_match(requested, registered, native=native) or requested == registered:
        return
    assert native
    got, want = LOOPBACK.fullmatch(requested), LOOPBACK.fullmatch(registered)
    assert got is not None, requested
    assert want is not None, registered
    assert got.group(1) == want.group(1)
    assert (got.group(3) or "") == (want.group(3) or "")
    port = got.group(2)
    assert port is None or 0 < int(port) < 65536


@pytest.mark.parametrize("port", ["\u0668\u0660", "\uff10\uff18", "\u00b2", "8080 ", "+80", "-1"])
def test_loopback_port_must_be_ascii_digits(port: str) -> None:
    """Regression: ``\\d`` also matched Arabic-Indic and full-width digits, so
    ``http://127.0.0.1:\\u0668\\u0660/cb`` (port 80 in Arabic-Indic digits) matched ``http://127.0.0.1/cb``."""
    assert not is_match(f"http://127.0.0.1:{port}/cb", "http://127.0.0.1/cb", native=True)
