"""``core.client_narrowing.narrowing``: what a client update takes away (the grants, tokens and
consents for it are taken back by the stores: tests/security/test_who_gets_which_token.py and
the store contract suite). Removed means allowed before and not after."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.client_narrowing import Narrowing, narrowing, needs_registered_apis
from tokensmith.core.models import Api, Client, ClientOrigin
from tokensmith.core.scopes import OIDC_SCOPES

OPEN = Api("https://mcp.test/mcp", "MCP", ("mcp:tools", "mcp:read"), 0, dynamic_clients=True)
CLOSED = Api("https://internal.test", "Internal", ("admin",), 0)


def client(origin: ClientOrigin = "static", **overrides: object) -> Client:
    base = Client(
        client_id="c",
        name="C",
        client_type="public",
        redirect_uris=("https://app.test/cb",),
        grant_types=("authorization_code",),
        scopes=("openid", "docs:read", "docs:write"),
        apis=("urn:a", "urn:b"),
        token_endpoint_auth_method="none",
        origin=origin,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_a_static_client_loses_what_its_lists_no_longer_hold() -> None:
    before = client()
    assert narrowing(before, before) == Narrowing()
    assert not narrowing(before, before)
    assert narrowing(before, client(apis=("urn:b",))) == Narrowing(apis=("urn:a",))
    assert narrowing(before, client(apis=("urn:b", "urn:a"))) == Narrowing()  # reordered only
    lost = narrowing(before, client(apis=("urn:c",), scopes=("docs:read",)))
    assert lost == Narrowing(apis=("urn:a", "urn:b"), scopes=("openid", "docs:write"))
    assert lost
    # added ones take nothing
    assert narrowing(before, client(apis=("urn:a", "urn:b", "urn:c"))) == Narrowing()
    assert not needs_registered_apis(before)


@pytest.mark.parametrize("origin", ["registered", "metadata_document"])
def test_a_dynamic_client_loses_only_declared_scopes(origin: ClientOrigin) -> None:
    declared = client(origin, apis=(), scopes=("mcp:tools", "mcp:read"))
    # its APIs are those open to dynamic clients, whatever its list says: none is lost
    assert narrowing(client(origin), client(origin, apis=())).apis == ()
    assert narrowing(declared, client(origin, apis=(), scopes=("mcp:read",))) == Narrowing(
        scopes=("mcp:tools",)
    )
    # declaring none, it may ask every scope an open API (or OpenID Connect) defines: no loss
    assert narrowing(declared, client(origin, apis=(), scopes=())) == Narrowing()


@pytest.mark.parametrize("origin", ["registered", "metadata_document"])
def test_a_dynamic_client_that_declared_no_scope_loses_every_scope_it_does_not_declare_now(
    origin: ClientOrigin,
) -> None:
    undeclared = client(origin, apis=(), scopes=())
    assert needs_registered_apis(undeclared)
    lost = narrowing(
        undeclared, client(origin, apis=(), scopes=("mcp:read",)), registered=(OPEN, CLOSED)
    )
    assert set(lost.scopes) == (OIDC_SCOPES | {"mcp:tools", "admin"})
    assert lost.apis == ()
