"""One ClientMetadata value carries the client options from the CLI and the admin service to
registration.new_client, which validates it."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.errors import InvalidClientMetadata, OAuthError
from tokensmith.core.models import Api
from tokensmith.core.registration import ClientMetadata, metadata_of, new_client, updated_client

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
        ({"client_type": "secret"}, "confidential or public"),
        ({"access_token_format": "paseto"}, "jwt or opaque"),
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


def test_a_client_credentials_client_without_an_api_is_refused() -> None:
    """It could never get a token (every request would be invalid_target): refused at
    registration, with the fix."""
    metadata = ClientMetadata(
        name="Worker", client_type="confidential", grant_types=("client_credentials",)
    )
    with pytest.raises(InvalidClientMetadata, match=r"needs an API.*apis create"):
        new_client(metadata, now=0, pepper=b"p")
    created = new_client(
        dataclasses.replace(metadata, apis=(API.identifier,)), apis=[API], now=0, pepper=b"p"
    )
    assert created.client.apis == (API.identifier,)


def test_an_update_keeps_id_secret_and_creation_and_is_validated_as_a_registration() -> None:
    metadata = ClientMetadata(
        name="App",
        client_type="confidential",
        redirect_uris=("https://app.example/cb",),
        scopes=("docs:read",),
        apis=(API.identifier,),
    )
    client = new_client(metadata, apis=[API], now=7, pepper=b"p").client
    assert metadata_of(client) == dataclasses.replace(
        metadata,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=("authorization_code",),
    )
    wanted = dataclasses.replace(
        metadata_of(client), name="App 2", redirect_uris=("https://app.example/new",)
    )
    updated = updated_client(client, wanted, apis=[API])
    assert (updated.client_id, updated.secret_digest, updated.created_at) == (
        client.client_id,
        client.secret_digest,
        7,
    )
    assert (updated.name, updated.redirect_uris) == ("App 2", ("https://app.example/new",))
    for changes, message in (
        ({"redirect_uris": ("http://app.example/cb",)}, "http redirect URIs"),
        ({"client_type": "public"}, "type and authentication method cannot change"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "cannot change"),
        ({"scopes": ("docs:write",)}, "not defined"),
    ):
        with pytest.raises(OAuthError, match=message):
            updated_client(client, dataclasses.replace(metadata_of(client), **changes), apis=[API])  # type: ignore[arg-type]
