"""The JSON form of the administered values (printed by ``tokensmith ... --json``): what an
operator sees of an API, a client, a user or a signing key. Never a secret or its digest."""

from __future__ import annotations

from tokensmith.core.keys import SigningKey
from tokensmith.core.models import Api, Client, User

__all__ = ["api_json", "client_json", "key_json", "user_json"]


def api_json(api: Api) -> dict[str, object]:
    return {
        "identifier": api.identifier,
        "name": api.name,
        "scopes": list(api.scopes),
        "descriptions": api.descriptions,
        "dynamic_clients": api.dynamic_clients,
    }


def client_json(client: Client) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": client.client_type,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "apis": list(client.apis),
        "default_api": client.default_api,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "first_party": client.first_party,
        "native": client.native,
        "introspect": client.can_introspect,
        "access_token_format": client.access_token_format,
        "origin": client.origin,
    }


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "disabled": user.disabled,
    }


def key_json(key: SigningKey) -> dict[str, object]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "retired_at": key.retired_at,
        "expires_at": key.expires_at,
    }
