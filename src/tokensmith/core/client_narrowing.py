"""What a client loses when an update takes APIs or scopes away from it, and taking back what
was given for them, in the update's transaction.

A client's grants (so its refresh tokens), its recorded access tokens and its users' consents
were given within what the client was registered for. Were they kept when an API or a scope is
taken away (``tokensmith clients update --remove-api/--remove-scope``, a list replaced by the
admin API's ``PATCH /clients/{client_id}`` or by ``changes``, an RFC 7592 update of a
registered client), they would be refused only while the client lacks it, and come back to
life with the API or scope given back. So, for one client only (other clients' grants for the
same API or scope, and this client's for what it keeps, stay):

- **A removed API**: every grant of the client whose audience is that API is revoked. A grant
  has exactly one audience (``Grant.audience``, the request's RFC 8707 resource), so "a grant
  for the API" is a grant whose audience it is. Every recorded, unexpired access token of the
  client for it (opaque ones, client-credentials ones included, and JWTs of user grants) is
  revoked, and every user's consent to the client for that API withdrawn.
- **A removed scope**: every grant of the client that holds it is revoked *whole*, not narrowed:
  a refresh token cannot be narrowed in place without changing what the grant is
  (``offline_access`` is what lets an OpenID grant hold a refresh token at all, ``openid`` what
  brings ID tokens), and the client gets what it may ask now by asking the user again. Every
  recorded, unexpired access token of the client whose scope holds it is revoked, and the
  users' consents to the client for that scope (for every API) are withdrawn; their consents to
  its other scopes stay.

Self-contained JWT access tokens of client credentials are not recorded (the fast path): a
resource server that checks them on its own accepts them until their expiry (minutes), as after
``apis delete``.

"Removed" means allowed before the update and not after it. A static client's APIs and scopes
are its lists. A dynamic client (``Client.is_dynamic``) may use every API open to dynamic
clients whatever its ``apis``: none of its APIs is ever removed. One that declares no scope may
ask the OpenID Connect scopes and those of the API it names (``authorize.allowed_scopes``): when
it declares none after the update, no scope is removed; when it declared none before, every
scope that the registered APIs or OpenID Connect define and that it does not declare now is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokensmith.core.models import Api, Client
from tokensmith.core.ports import Stores
from tokensmith.core.scopes import OIDC_SCOPES


@dataclass(frozen=True, slots=True)
class Narrowing:
    """The APIs (identifiers) and scopes a client had and no longer has."""

    apis: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.apis or self.scopes)


@dataclass(frozen=True, slots=True)
class TakenBack:
    """How many grants and access tokens were revoked, and consents (one per scope) withdrawn."""

    grants: int = 0
    access_tokens: int = 0
    consents: int = 0


def needs_registered_apis(before: Client) -> bool:
    """Whether ``narrowing`` needs every registered API: ``before`` is a dynamic client that
    declared no scope (it could ask those of any API open to dynamic clients)."""
    return before.is_dynamic and not before.scopes


def narrowing(before: Client, after: Client, *, registered: Sequence[Api] = ()) -> Narrowing:
    """What ``after`` (the client updated) may no longer use of what ``before`` could.
    ``registered``: every registered API, when ``needs_registered_apis(before)``."""
    apis = () if after.is_dynamic else tuple(a for a in before.apis if a not in after.apis)
    if after.is_dynamic and not after.scopes:
        return Narrowing(apis, ())
    if needs_registered_apis(before):
        could = {*OIDC_SCOPES, *(s for api in registered for s in api.scopes)}
        scopes = tuple(sorted(could - set(after.scopes)))
    else:
        scopes = tuple(s for s in before.scopes if s not in after.scopes)
    return Narrowing(apis, scopes)


async def take_back(stores: Stores, client_id: str, lost: Narrowing, now: int) -> TakenBack:
    """Revoke the grants and recorded access tokens of ``client_id`` for what it ``lost``, and
    withdraw its users' consents for it, in the caller's transaction (the update's). Grants
    before access tokens, as ``Admin.delete_api`` does: an access token issued by a refresh
    that held the grant meanwhile is committed by the time its record is looked for."""
    grants = tokens = consents = 0
    for api in lost.apis:
        grants += await stores.grants.revoke_for_client_audience(client_id, api, now)
        tokens += await stores.access_tokens.revoke_for_client_audience(client_id, api, now)
        consents += await stores.consents.withdraw_for_client_api(client_id, api)
    if lost.scopes:
        grants += await stores.grants.revoke_for_client_scopes(client_id, lost.scopes, now)
        tokens += await stores.access_tokens.revoke_for_client_scopes(client_id, lost.scopes, now)
        consents += await stores.consents.withdraw_for_client_scopes(client_id, lost.scopes)
    return TakenBack(grants, tokens, consents)


async def withdraw_narrowed(stores: Stores, before: Client, after: Client, now: int) -> TakenBack:
    """``take_back`` what ``after`` lost of ``before`` (``narrowing``), reading the registered
    APIs when that needs them. Called in the transaction that stores ``after``."""
    registered = await stores.apis.list() if needs_registered_apis(before) else []
    lost = narrowing(before, after, registered=registered)
    if not lost:
        return TakenBack()
    return await take_back(stores, before.client_id, lost, now)
