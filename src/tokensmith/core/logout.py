"""RP-Initiated Logout 1.0: the decisions of ``GET|POST /logout`` (``end_session_endpoint``).

- ``post_logout_redirect_uri`` must exactly match one registered for the client (named by the
  ``id_token_hint``'s audience or ``client_id``, which must agree); otherwise an error page,
  never a redirect (§3; RFC 9700 §4.11 open redirectors).
- With a valid ``id_token_hint`` naming the signed-in user (or with no session at all), the
  logout happens at once. Otherwise the user confirms on a page whose form carries a CSRF token
  (no logout CSRF); the edge checks that token before :func:`confirm`.
- Ending a session deletes it server-side, revokes the grants issued in it except
  ``offline_access`` ones, records the audit event, and clears the cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import jwt

from tokensmith.core import audit, id_token
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import InvalidRequest
from tokensmith.core.interaction import CLEAR, KEEP, SessionChange
from tokensmith.core.models import Client, Session
from tokensmith.core.ports import Stores
from tokensmith.core.redirect_uris import redirect_url

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer


@dataclass(frozen=True, slots=True)
class LogoutTarget:
    """The client the user signs out of (if named) and where to send the browser after."""

    client: Client | None
    redirect_uri: str | None
    state: str | None

    @property
    def location(self) -> str | None:
        """The ``post_logout_redirect_uri`` with ``state``, or ``None``: the signed-out page."""
        if self.redirect_uri is None:
            return None
        return redirect_url(self.redirect_uri, {"state": self.state})


@dataclass(frozen=True, slots=True)
class LogoutOutcome:
    """``done``: signed out (or was not signed in), go to ``target.location`` or the signed-out
    page; ``confirm``: ask the user first. ``session``: the cookie's change."""

    kind: Literal["done", "confirm"]
    target: LogoutTarget
    session: SessionChange = KEEP


async def target(
    server: AuthorizationServer, stores: Stores, params: dict[str, str]
) -> LogoutTarget:
    """The client and the post-logout redirect URI of a request, refused unless registered."""
    client_id = params.get("client_id")
    redirect_uri = params.get("post_logout_redirect_uri")
    client = await stores.clients.get(client_id) if client_id else None
    if client_id and client is None:
        raise InvalidRequest("the client is not registered with this server")
    if redirect_uri is not None:
        if client is None:
            raise InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint")
        if redirect_uri not in client.post_logout_redirect_uris:
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
    return LogoutTarget(client, redirect_uri, params.get("state"))


def _hint_claims(server: AuthorizationServer, hint: str) -> dict[str, object]:
    try:
        return id_token.verify_hint(server.keys, hint, issuer=server.issuer)
    except jwt.PyJWTError:
        raise InvalidRequest("id_token_hint is not an ID token issued by this server") from None


async def end_session(
    server: AuthorizationServer, stores: Stores, session: Session | None
) -> SessionChange:
    """Delete the session and revoke its grants (tokens of the session end with it, unless the
    user asked for ``offline_access``); the cookie is cleared in any case."""
    if session is not None:
        await stores.sessions.delete(session.digest)
        await stores.grants.revoke_for_session(session.digest, server.now())
        server.audit(AuditEvent(audit.LOGOUT, server.now(), user_id=session.user_id))
    return CLEAR


async def start(
    server: AuthorizationServer,
    stores: Stores,
    params: dict[str, str],
    session: Session | None,
) -> LogoutOutcome:
    """``GET /logout``: check the hint and the target; sign out at once when the hint names the
    signed-in user, finish at once without a session, else ask."""
    hint = params.get("id_token_hint")
    claims = _hint_claims(server, hint) if hint else None
    if claims is not None:
        hinted = next(iter(id_token.audiences(claims)), "")
        if params.setdefault("client_id", hinted) != hinted:
            raise InvalidRequest("client_id does not match the id_token_hint")
    where = await target(server, stores, params)
    if claims is not None and (session is None or claims["sub"] == session.user_id):
        return LogoutOutcome("done", where, await end_session(server, stores, session))
    if session is None:
        return LogoutOutcome("done", where)
    return LogoutOutcome("confirm", where)


async def confirm(
    server: AuthorizationServer,
    stores: Stores,
    form: dict[str, str],
    session: Session | None,
) -> LogoutOutcome:
    """``POST /logout`` (its CSRF token checked): sign out."""
    where = await target(server, stores, form)
    return LogoutOutcome("done", where, await end_session(server, stores, session))
