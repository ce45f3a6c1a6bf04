"""Issue 16 item 4, in core: a dynamic client (registered at run time or known by a metadata
document) gets tokens only for an API open to dynamic clients, named by ``resource``; it is never
first party; a static client is not affected by the flag. The request-level table is
tests/security/test_authorization_matrix.py; these are the rules one at a time."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.authorize import allowed_scopes, check_user_scopes, resolve_audience
from tokensmith.core.errors import InvalidClientMetadata, InvalidScope, InvalidTarget
from tokensmith.core.interaction import needs_consent
from tokensmith.core.models import Api, AuthorizationRequest, Client, ClientOrigin, User
from tokensmith.core.registration import ClientMetadata, new_client

OPEN = Api("https://mcp.test/mcp", "MCP", ("mcp:tools",), 0, dynamic_clients=True)
CLOSED = Api("https://internal.test", "Internal", ("admin",), 0)


def client(origin: ClientOrigin, **overrides: object) -> Client:
    base = Client(
        client_id="c",
        name="C",
        client_type="public",
        redirect_uris=("https://app.test/cb",),
        grant_types=("authorization_code",),
        scopes=(),
        apis=(),
        token_endpoint_auth_method="none",
        origin=origin,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", ["registered", "metadata_document"])
def test_a_dynamic_client_gets_exactly_the_open_api_it_names(origin: ClientOrigin) -> None:
    dyn = client(origin)
    assert resolve_audience(OPEN.identifier, dyn, {OPEN.identifier: OPEN}) == (
        OPEN.identifier,
        OPEN,
    )
    with pytest.raises(InvalidTarget):  # closed to dynamic clients
        resolve_audience(CLOSED.identifier, dyn, {CLOSED.identifier: CLOSED})
    with pytest.raises(InvalidTarget):  # not registered
        resolve_audience("https://nowhere.test", dyn, {})
    with pytest.raises(InvalidTarget, match="resource"):  # no resource: no default API
        resolve_audience(None, dyn, {OPEN.identifier: OPEN})
    # the same words for "closed" and "unregistered": the answer does not tell which APIs exist
    words = set()
    for api in (CLOSED, None):
        with pytest.raises(InvalidTarget) as caught:
            resolve_audience(
                "https://nowhere.test" if api is None else api.identifier,
                dyn,
                {} if api is None else {api.identifier: api},
            )
        words.add(caught.value.description)
    assert len(words) == 1


def test_a_dynamic_client_has_no_default_api_even_with_apis_stored() -> None:
    dyn = client("registered", apis=(OPEN.identifier,))
    assert dyn.default_api is None
    assert not dyn.may_use(CLOSED)
    assert dyn.may_use(OPEN)


def test_a_static_client_is_not_affected_by_the_flag() -> None:
    static = client("static", apis=(CLOSED.identifier,))
    assert static.may_use(CLOSED)
    assert not static.may_use(OPEN)  # open to dynamic clients, not one of its APIs
    with pytest.raises(InvalidTarget):
        resolve_audience(OPEN.identifier, static, {OPEN.identifier: OPEN})
    assert resolve_audience(None, static, {CLOSED.identifier: CLOSED}) == (
        CLOSED.identifier,
        CLOSED,
    )


def test_scopes_of_a_dynamic_client() -> None:
    undeclared = client("metadata_document")
    assert set(allowed_scopes(undeclared, OPEN)) >= {"openid", "mcp:tools"}
    assert check_user_scopes((), undeclared, OPEN) == ("mcp:tools",)  # the API's, by default
    assert check_user_scopes(("openid",), undeclared, OPEN) == ("openid",)
    with pytest.raises(InvalidScope):
        check_user_scopes(("admin",), undeclared, OPEN)  # another API's scope
    declared = client("registered", scopes=("openid",))
    with pytest.raises(InvalidScope):
        check_user_scopes(("mcp:tools",), declared, OPEN)  # not among its declared scopes


class _NoConsents:
    async def granted_scopes(self, user_id: str, client_id: str, api: str) -> set[str]:
        return set()


class _Stores:
    consents = _NoConsents()


async def test_a_dynamic_client_is_never_first_party() -> None:
    user = User("u", "alice", None, False, None, False, None, 0, 0)
    request = AuthorizationRequest(
        client_id="c",
        redirect_uri="https://app.test/cb",
        redirect_uri_sent=True,
        scopes=("mcp:tools",),
        state=None,
        code_challenge="x" * 43,
        audience=OPEN.identifier,
    )
    static = client("static", first_party=True)
    assert not await needs_consent(static, user, request, _Stores())  # type: ignore[arg-type]
    for origin in ("registered", "metadata_document"):
        dyn = client(origin, first_party=True)  # type: ignore[arg-type]
        assert await needs_consent(dyn, user, request, _Stores())  # type: ignore[arg-type]


def test_registration_refuses_apis_or_first_party_for_a_dynamic_client() -> None:
    metadata = ClientMetadata(
        name="MCP client", client_type="public", redirect_uris=("https://app.test/cb",)
    )
    made = new_client(metadata, now=0, pepper=b"p", origin="registered")
    assert (made.client.origin, made.client.apis) == ("registered", ())
    for bad in (
        dataclasses.replace(metadata, apis=(OPEN.identifier,)),
        dataclasses.replace(metadata, first_party=True),
    ):
        with pytest.raises(InvalidClientMetadata):
            new_client(bad, now=0, pepper=b"p", origin="registered")
