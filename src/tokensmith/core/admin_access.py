"""Who may call the admin API (``/admin/v1/...``): bearer access tokens of this server only
(RFC 6750), for the admin API's own audience, with the admin scope of the operation.

- The token is checked as introspection checks it (``core.token_status.find_active``): our own
  signature (our keys, in process, no HTTP to ourselves) or our own opaque token, unexpired,
  not revoked. Refresh tokens and ID tokens are not access tokens and are refused.
- Its audience must be the admin API, ``<issuer>/admin/v1`` (RFC 8707 resource indicators): a
  token for another API of this server is refused (``invalid_token``, 401).
- Its client must still exist (read from the store, not the cache): deleting the admin client
  ends its access at once, not when its last token expires.
- It must carry the operation's scope (``admin:<resource>:read`` or ``:write``), else 403
  ``insufficient_scope`` naming the scope (RFC 6750 §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tokensmith.core.errors import InsufficientScope, InvalidToken
from tokensmith.core.token_status import find_active

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.ports import Stores

ADMIN_PATH = "/admin/v1"

#: What each admin resource covers; each has a ``:read`` and a ``:write`` scope.
ADMIN_RESOURCES = {
    "apis": "APIs (resource servers)",
    "clients": "OAuth clients",
    "users": "user accounts",
    "keys": "signing keys",
    "grants": "users' grants",
    "sessions": "users' sign-in sessions",
}
AdminResource = Literal["apis", "clients", "users", "keys", "grants", "sessions"]
AdminAction = Literal["read", "write"]

ADMIN_SCOPES: tuple[str, ...] = tuple(
    f"admin:{resource}:{action}" for resource in ADMIN_RESOURCES for action in ("read", "write")
)
ADMIN_SCOPE_DESCRIPTIONS = {
    f"admin:{resource}:{action}": f"{'See' if action == 'read' else 'Change'} {what}"
    for resource, what in ADMIN_RESOURCES.items()
    for action in ("read", "write")
}


def admin_api_identifier(issuer: str) -> str:
    """The audience of admin API tokens: the admin API's own URL under the issuer."""
    return issuer.rstrip("/") + ADMIN_PATH


def admin_scope(resource: AdminResource, action: AdminAction) -> str:
    return f"admin:{resource}:{action}"


@dataclass(frozen=True, slots=True)
class AdminCaller:
    """Who called: the client the token was issued to (the audit events' actor), and for a
    token issued to a user, that user."""

    client_id: str
    subject: str
    scopes: tuple[str, ...]


async def check_admin_access(
    context: ServerContext, token: str, stores: Stores, *, scope: str
) -> AdminCaller:
    """The caller of an admin operation that needs ``scope``, or ``InvalidToken`` (401) /
    ``InsufficientScope`` (403)."""
    info = await find_active(context, token, stores)
    if info is None or info.kind != "access_token":
        raise InvalidToken("the access token is invalid, expired or revoked")
    if info.audience != admin_api_identifier(context.issuer):
        raise InvalidToken("the access token is not for the admin API")
    # the store, not the client cache: a deletion made elsewhere counts at once
    if await stores.clients.get(info.client_id) is None:
        raise InvalidToken("the client of this access token no longer exists")
    if scope not in info.scopes:
        raise InsufficientScope(f"this operation needs the scope {scope}")
    return AdminCaller(info.client_id, info.subject, info.scopes)
