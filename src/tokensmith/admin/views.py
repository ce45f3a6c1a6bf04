"""The JSON form of the administered values (printed by ``tokensmith ... --json``): what an
operator sees of an API, a client, a user, a signing key, a grant, a session or an invitation.
Never a secret or its digest (an invitation's link is only in the answer that creates it). Times
are unix seconds (UTC); the field names are stable (scripts rely on them)."""

from __future__ import annotations

from tokensmith.core.keys import KeyState, SigningKey
from tokensmith.core.models import AccountToken, Api, Client, Grant, Session, User

__all__ = [
    "api_json",
    "client_json",
    "grant_json",
    "invitation_json",
    "key_json",
    "session_json",
    "user_json",
]


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
        "mfa_required": client.mfa_required,
        "access_token_format": client.access_token_format,
        "origin": client.origin,
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_idle_ttl": client.refresh_token_idle_ttl,
        "refresh_token_absolute_ttl": client.refresh_token_absolute_ttl,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "created_at": client.created_at,
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


def key_json(key: SigningKey, state: KeyState | None = None) -> dict[str, object]:
    """``state``: what the key does now (``Admin.key_states``); left out when not given."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        **({"state": state} if state is not None else {}),
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "retired_at": key.retired_at,
        "expires_at": key.expires_at,
    }


def grant_json(grant: Grant) -> dict[str, object]:
    return {
        "id": grant.id,
        "client_id": grant.client_id,
        "user_id": grant.user_id,
        "scopes": list(grant.scopes),
        "audience": grant.audience,
        "auth_time": grant.auth_time,
        "created_at": grant.created_at,
        "revoked_at": grant.revoked_at,
        "session_id": grant.session_id,
    }


def session_json(session: Session) -> dict[str, object]:
    """``id``: the digest of the session cookie (what grants name as their ``session_id``),
    never the cookie itself."""
    return {
        "id": session.digest,
        "user_id": session.user_id,
        "auth_time": session.auth_time,
        "expires_at": session.expires_at,
        "amr": list(session.amr),
    }


def invitation_json(invitation: AccountToken) -> dict[str, object]:
    """A pending invitation, named by its address (never its link nor the link's digest)."""
    return {
        "email": invitation.email,
        "name": invitation.data.get("name"),
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
    }
