"""One ClientMetadata value carries the client options from the CLI and the admin service to
registration.new_client, which validates it."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.errors import InvalidClientMetadata
from tokensmith.core.models import Api
from tokensmith.core.registration import ClientMetadata, new_client

API = Api(identifier="https://api.example", name="API", scopes=("docs:read",), created_at=0)


def test_iterables_are_frozen_into_tuples() -> None:
    metadata = ClientMetadata(
        name="App",
        client_type="confidential",
        redirect_uris=["https://app.example/cb"],  # type: ignore[arg-type]
        scopes=iter(["docs:read"]),  # type: ignore[arg-type]
    )
    assert metadata.redirect_uris == ("https://app.example/cb",)
    assert metadata.scopes == ("docs:read",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        metadata.name = "Other"  # type: ignore[misc]


def test_the_defaults_register_a_confidential_code_client_with_a_secret() -> None:
    created = new_client(
        ClientMetadata(
            name=" App ",
            client_type="confidential",
            redirect_uris=("https://app.example/cb",),
            scopes=("docs:read",),
            apis=(API.identifier,),
        ),
        apis=[API],
        now=7,
        pepper=b"p" * 32,
    )
    client = created.client
    assert created.client_secret is not None
    assert client.secret_digest is not None
    assert client.name == "App"
    assert client.grant_types == ("authorization_code",)
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.apis == (API.identifier,)
    assert client.created_at == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grant_types": ("password",)}, "the password grant is not supported"),
        ({"grant_types": ("implicit",)}, "the implicit grant is not supported"),
        ({"redirect_uris": ()}, "the authorization code grant needs a redirect URI"),
        ({"native": True}, "native apps are public clients"),
        ({"access_token_ttl": 5}, "token lifetimes are between 30 seconds and 10 years"),
        ({"id_token_signed_response_alg": "HS256"}, "id_token_signed_response_alg must be"),
        ({"scopes": ("docs:write",)}, "scopes not defined by https://api.example: docs:write"),
    ],
)
def test_new_client_validates_the_metadata(changes: dict[str, object], message: str) -> None:
    metadata = ClientMetadata(
        name="App",
        client_type="confidential",
        redirect_uris=("https://app.example/cb",),
        scopes=("docs:read",),
        apis=(API.identifier,),
    )
    with pytest.raises(InvalidClientMetadata, match=message):
        new_client(dataclasses.replace(metadata, **changes), apis=[API], now=0, pepper=b"p")  # type: ignore[arg-type]
