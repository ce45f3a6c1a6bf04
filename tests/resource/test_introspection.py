"""IntrospectionValidator (RFC 7662) against the local issuer's real introspection endpoint."""

from __future__ import annotations

import httpx
import pytest

from tokensmith.resource import (
    CombinedValidator,
    IntrospectionValidator,
    InvalidTokenError,
    IssuerUnavailableError,
)
from tokensmith.testing import LocalIssuer

from .forge import FakeClock


@pytest.fixture
def introspection(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> IntrospectionValidator:
    return issuer.introspection_validator(http, clock=clock)


async def test_introspection_active_token(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    token = issuer.opaque_token(sub="alice", scopes=["docs:read"], client_id="spa")
    principal = await introspection.validate(token)
    assert principal.subject == "alice"
    assert principal.client_id == "spa"
    assert principal.scopes == frozenset({"docs:read"})
    assert principal.token_type == "opaque"
    assert issuer.requests["/introspect"] == 1


async def test_introspection_inactive_token_refused(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate("ts_at_never-issued")


async def test_introspection_revoked_token_refused(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    introspection = issuer.introspection_validator(http, clock=clock, cache_ttl=30)
    token = issuer.opaque_token()
    await introspection.validate(token)
    issuer.revoke(token)
    await introspection.validate(token)  # the cached answer lasts at most cache_ttl
    clock.advance(30)
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate(token)
    assert issuer.requests["/introspect"] == 2


async def test_introspection_cache_keyed_by_token(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    token = issuer.opaque_token()
    for _ in range(5):
        await introspection.validate(token)
    await introspection.validate(issuer.opaque_token(sub="bob"))
    assert issuer.requests["/introspect"] == 2


async def test_introspection_cache_never_outlives_exp(
    issuer: LocalIssuer, introspection: IntrospectionValidator, clock: FakeClock
) -> None:
    token = issuer.opaque_token(expires_in=10)  # cache_ttl is 60 s
    await introspection.validate(token)
    clock.advance(11)
    with pytest.raises(InvalidTokenError):
        await introspection.validate(token)
    assert issuer.requests["/introspect"] == 2  # asked again: the entry was gone at exp


async def test_introspection_inactive_answers_cached_briefly(
    issuer: LocalIssuer, introspection: IntrospectionValidator, clock: FakeClock
) -> None:
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            await introspection.validate("ts_at_garbage")
    assert issuer.requests["/introspect"] == 1
    clock.advance(11)
    with pytest.raises(InvalidTokenError):
        await introspection.validate("ts_at_garbage")
    assert issuer.requests["/introspect"] == 2


async def test_introspection_wrong_audience_refused(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    with pytest.raises(InvalidTokenError, match="aud"):
        await introspection.validate(issuer.opaque_token(audience="https://other.example"))


async def test_introspection_wrong_client_secret_is_unavailable(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    introspection = IntrospectionValidator(
        http=http,
        issuer=issuer.url,
        client_id=issuer.introspection_client_id,
        client_secret="wrong",
        clock=clock,
    )
    with pytest.raises(IssuerUnavailableError, match="401"):
        await introspection.validate(issuer.opaque_token())


async def test_introspection_oversized_token_refused(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    with pytest.raises(InvalidTokenError, match="exceeds"):
        await introspection.validate("x" * 9000)
    assert issuer.requests["/introspect"] == 0


async def test_combined_validator_routes_by_shape(
    issuer: LocalIssuer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    combined = CombinedValidator(
        jwt=issuer.validator(http, clock=clock),
        opaque=issuer.introspection_validator(http, clock=clock),
    )
    jwt_principal = await combined.validate(issuer.token(sub="alice"))
    opaque_principal = await combined.validate(issuer.opaque_token(sub="bob"))
    assert (jwt_principal.token_type, jwt_principal.subject) == ("jwt", "alice")
    assert (opaque_principal.token_type, opaque_principal.subject) == ("opaque", "bob")
    assert issuer.requests["/introspect"] == 1


def test_introspection_secret_not_in_repr(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    assert issuer.introspection_client_secret not in repr(introspection)


async def test_introspection_outage_is_unavailable(
    issuer: LocalIssuer, introspection: IntrospectionValidator
) -> None:
    issuer.outage = True
    with pytest.raises(IssuerUnavailableError, match="503"):
        await introspection.validate(issuer.opaque_token())


@pytest.mark.parametrize("active", ["true", 1, None, [True]])
async def test_introspection_active_must_be_json_true(
    issuer: LocalIssuer, introspection: IntrospectionValidator, active: object
) -> None:
    token = issuer.opaque_token(extra={"active": active})
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate(token)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": "never"}, "exp"),
        ({"sub": ["alice"]}, "sub"),
        ({"scope": ["docs:admin"]}, "scope"),
    ],
)
async def test_introspection_malformed_answers_refused(
    issuer: LocalIssuer, introspection: IntrospectionValidator, extra: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidTokenError, match=match):
        await introspection.validate(issuer.opaque_token(extra=extra))


@pytest.mark.parametrize(
    "token_type",
    [
        "refresh_token",
        "urn:ietf:params:oauth:token-type:refresh_token",
        "urn:ietf:params:oauth:token-type:id_token",
        "N_A",
        "DPoP",
        "",
        None,
        42,
        ["Bearer"],
    ],
)
async def test_introspection_refuses_tokens_that_are_not_access_tokens(
    issuer: LocalIssuer, introspection: IntrospectionValidator, token_type: object
) -> None:
    """An active refresh token (what an authorization server answers to the client that owns
    it) is not a credential for a resource (RFC 6749 §1.5, RFC 7662 §2.2 ``token_type``)."""
    token = issuer.opaque_token(extra={"token_type": token_type})
    with pytest.raises(InvalidTokenError, match="token_type"):
        await introspection.validate(token)
    with pytest.raises(InvalidTokenError, match="inactive"):
        await introspection.validate(token)  # remembered as refused, not retried
    assert issuer.requests["/introspect"] == 1


@pytest.mark.parametrize(
    "token_type",
    ["Bearer", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token", ...],
)
async def test_introspection_accepts_access_token_types_and_no_type(
    issuer: LocalIssuer, introspection: IntrospectionValidator, token_type: object
) -> None:
    token = issuer.opaque_token(extra={"token_type": token_type})
    if token_type is ...:
        del issuer._opaque[token]["token_type"]  # RFC 7662 §2.2: token_type is optional
    assert (await introspection.validate(token)).subject == "alice"
