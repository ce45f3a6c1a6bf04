"""The account page's decisions: which applications the user consented to, and removing one
(OAuth 2.1 §7.9 consent phishing: users must be able to see and withdraw what they granted).

Removing an application withdraws its consents and revokes every grant the user gave it, so its
refresh and recorded access tokens stop working at once; the withdrawal is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokensmith.core import audit, mfa
from tokensmith.core.accounts import Accounts, StoreAccounts
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import NotSignedIn
from tokensmith.core.metadata_document import domain_of, looks_like_document_url
from tokensmith.core.mfa import Factors
from tokensmith.core.models import PasskeyCredential, Session
from tokensmith.core.ports import Stores

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer

NOT_SIGNED_IN = "This page lists the applications connected to your account once you are signed in."
SECOND_FACTOR_NEEDED = (
    "Your account uses two-step verification: sign in again with your code to open this page."
)


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    name: str
    scopes: str
    apis: tuple[tuple[str, str], ...] = ()
    """(the API's name, or '' for sign-in only; the scopes granted for it) per API."""


@dataclass(frozen=True, slots=True)
class AccountPage:
    username: str
    apps: tuple[ConnectedApp, ...]
    email: str | None = None
    email_verified: bool = True
    totp_enabled: bool = False
    passkeys: tuple[PasskeyCredential, ...] = ()
    """Two-step verification with an authenticator app is on (``core.account_mfa``)."""
    recovery_codes_left: int = 0


def signed_in(session: Session | None) -> Session:
    """The session of the account page's user; ``NotSignedIn`` (401) without one."""
    if session is None:
        raise NotSignedIn(NOT_SIGNED_IN)
    return session


async def fully_signed_in(factors: Factors, stores: Stores, session: Session | None) -> Session:
    """``signed_in``, and a session that used the user's second factor if they have one: a
    password alone never opens the account page of a user with a second factor."""
    session = signed_in(session)
    if not mfa.is_multi_factor(session.amr) and await factors.has_second_factor(
        stores, session.user_id
    ):
        raise NotSignedIn(SECOND_FACTOR_NEEDED)
    return session


async def page(
    stores: Stores,
    session: Session | None,
    *,
    factors: Factors | None = None,
    users: Accounts | None = None,
) -> AccountPage:
    """The signed-in user's connected applications, each with its scopes per API, and the
    state of their second factors (with ``factors``, the session must have used them);
    ``users``: the server's accounts (``core.accounts``)."""
    if factors is not None:
        session = await fully_signed_in(factors, stores, session)
    user_id = signed_in(session).user_id
    user = await (users or StoreAccounts()).get(stores, user_id)
    apps = []
    for client_id, per_api in (await stores.consents.list_for_user(user_id)).items():
        client = await stores.clients.get(client_id)
        if client is None and looks_like_document_url(client_id):
            # a metadata-document client is not stored; its URL's host names it (the document
            # is not fetched for this page)
            name = f"{domain_of(client_id)} (unverified)"
        elif client is None:
            continue
        else:
            name = client.name
        apis = []
        for identifier, scopes in per_api.items():
            api = await stores.apis.get(identifier) if identifier else None
            label = api.name if api else identifier
            apis.append((label, " ".join(sorted(scopes))))
        everything = sorted({s for scopes in per_api.values() for s in scopes})
        apps.append(ConnectedApp(client_id, name, " ".join(everything), tuple(apis)))
    totp = await stores.totp.get(user_id)
    return AccountPage(
        user.username if user else "",
        tuple(apps),
        email=user.email if user else None,
        email_verified=user.email_verified if user else True,
        totp_enabled=totp is not None and totp.confirmed_at is not None,
        passkeys=tuple(await stores.passkeys.list_for_user(user_id)),
        recovery_codes_left=await stores.recovery_codes.count_unused(user_id),
    )


async def remove_app(
    server: AuthorizationServer, stores: Stores, session: Session | None, client_id: str
) -> bool:
    """Withdraw the user's consents to ``client_id`` and revoke its grants; ``False`` when there
    was nothing to withdraw."""
    user_id = (await fully_signed_in(server.factors, stores, session)).user_id
    now = server.now()
    if not await stores.consents.withdraw(user_id, client_id):
        return False
    await stores.grants.revoke_for_client(user_id, client_id, now)
    server.audit(AuditEvent(audit.CONSENT_WITHDRAWN, now, client_id=client_id, user_id=user_id))
    return True
