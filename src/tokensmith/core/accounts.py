"""Bring your own users: the account Protocol the server's login, userinfo and account pages use.

tokensmith keeps its own users table (``StoreAccounts``, the default), but an application that
already has users implements ``Accounts`` over its own table and passes it to
``create_app(..., accounts=MyAccounts())`` (or names a factory in ``TOKENSMITH_ACCOUNTS``,
``module:callable``). Every method receives the request's ``Stores`` (which the default
implementation reads and an application's own implementation may ignore).

What stays tokensmith's, whichever implementation is plugged in:

- the login throttling (``core.throttle``), keyed by the subject the login names, or by the
  normalised login when it names no account;
- the password check runs on the server's hashing pool, never on the event loop: ``core.login``
  calls ``verify_password`` (synchronous on purpose) through ``Passwords.run``; an unknown or
  disabled account is verified against tokensmith's argon2 dummy hash, the same work as a
  wrong password;
- sessions, grants, consents and audit events are tokensmith's, keyed by the subject.

Optional capabilities, declared in ``capabilities`` so the pages hide what an implementation
cannot do: ``CREATE`` (sign-up creates users), ``UPDATE_PASSWORD`` (the password can be changed
or reset, and an outdated hash upgraded on login), ``UPDATE_EMAIL`` (the address can be
changed), ``DELETE`` (the user can delete their account).
"""

from __future__ import annotations

import hmac
from typing import Protocol, runtime_checkable

from tokensmith.core.models import Grant, RefreshToken, User
from tokensmith.core.passwords import PasswordCheck, Passwords
from tokensmith.core.ports import Stores

CREATE = "create"
UPDATE_PASSWORD = "update_password"
UPDATE_EMAIL = "update_email"
DELETE = "delete"
ALL_CAPABILITIES = frozenset({CREATE, UPDATE_PASSWORD, UPDATE_EMAIL, DELETE})


def claims_for(user: User, scopes: tuple[str, ...]) -> dict[str, object]:
    """The standard claims of a user by scope (OpenID Connect Core §5.4): ``sub`` always;
    ``profile``: preferred_username, updated_at, name; ``email``: email, email_verified."""
    claims: dict[str, object] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        claims["updated_at"] = user.updated_at
        if user.name:
            claims["name"] = user.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


@runtime_checkable
class Accounts(Protocol):
    """The users the server signs in. ``User.id`` is the subject (``sub``): stable, never
    reused, at most 64 characters. ``User.password_hash`` is opaque to tokensmith: it is only
    handed back to ``verify_password`` and compared to detect a password changed during a
    login."""

    capabilities: frozenset[str]
    """The optional capabilities implemented (``CREATE``, ``UPDATE_PASSWORD`` ...)."""

    async def find_by_login(self, stores: Stores, login: str) -> User | None:
        """The user whose login name (username or e-mail) is ``login``, already normalised
        (NFKC, case-folded, trimmed: ``passwords.normalize_login``)."""
        ...

    async def get(self, stores: Stores, subject: str) -> User | None:
        """The user whose id is ``subject``."""
        ...

    def verify_password(self, user: User, password: str) -> PasswordCheck:
        """Whether ``password`` is the user's. Synchronous: tokensmith runs it on its hashing
        pool. ``PasswordCheck.new_hash`` asks tokensmith to store an upgraded hash
        (``set_password_hash``, only with ``UPDATE_PASSWORD``)."""
        ...

    def claims(self, user: User, scopes: tuple[str, ...]) -> dict[str, object]:
        """The claims of a subject for the granted scopes (userinfo); ``sub`` must be
        ``user.id``."""
        ...

    async def create(self, stores: Stores, user: User) -> None:
        """``CREATE``: store a new user (``ports.Conflict`` if its login names are taken)."""
        ...

    async def set_password_hash(
        self, stores: Stores, subject: str, password_hash: str, now: int
    ) -> bool:
        """``UPDATE_PASSWORD``: replace the user's password hash (an argon2id hash made by
        tokensmith); ``False`` when there is no such user."""
        ...

    async def set_profile(
        self,
        stores: Stores,
        subject: str,
        *,
        name: str | None,
        email: str | None,
        email_verified: bool,
        now: int,
    ) -> bool:
        """``UPDATE_EMAIL``: replace name and address; ``False`` when there is no such user;
        ``ports.Conflict`` when another user has the address (the e-mail change relies on it:
        an address is one account's)."""
        ...

    async def delete(self, stores: Stores, subject: str) -> bool:
        """``DELETE``: remove the user and their personal data; ``False`` when unknown."""
        ...


class StoreAccounts:
    """The default: tokensmith's own users table (``stores.users``), every capability."""

    capabilities = ALL_CAPABILITIES

    def __init__(self, passwords: Passwords | None = None) -> None:
        self._passwords = passwords

    def bind(self, passwords: Passwords) -> None:
        """The server's argon2 parameters, which verify and upgrade the stored hashes."""
        self._passwords = passwords

    async def find_by_login(self, stores: Stores, login: str) -> User | None:
        return await stores.users.find_by_login(login)

    async def get(self, stores: Stores, subject: str) -> User | None:
        return await stores.users.get(subject)

    def verify_password(self, user: User, password: str) -> PasswordCheck:
        if self._passwords is None:
            raise RuntimeError("StoreAccounts is used before the server bound its hasher")
        return self._passwords.check_sync(user.password_hash, password)

    def claims(self, user: User, scopes: tuple[str, ...]) -> dict[str, object]:
        return claims_for(user, scopes)

    async def create(self, stores: Stores, user: User) -> None:
        await stores.users.create(user)

    async def set_password_hash(
        self, stores: Stores, subject: str, password_hash: str, now: int
    ) -> bool:
        return await stores.users.set_password_hash(subject, password_hash, now)

    async def set_profile(
        self,
        stores: Stores,
        subject: str,
        *,
        name: str | None,
        email: str | None,
        email_verified: bool,
        now: int,
    ) -> bool:
        return await stores.users.set_profile(
            subject, name=name, email=email, email_verified=email_verified, now=now
        )

    async def delete(self, stores: Stores, subject: str) -> bool:
        return await stores.users.delete(subject)


async def live_grant(accounts: Accounts, stores: Stores, grant_id: str) -> Grant | None:
    """The grant, unless it is revoked or its user is gone or disabled: one read for
    tokensmith's own users (``GrantStore.get_live``), the grant then the user otherwise."""
    if isinstance(accounts, StoreAccounts):
        return await stores.grants.get_live(grant_id)
    grant = await stores.grants.get(grant_id)
    if grant is None or grant.revoked_at is not None:
        return None
    user = await accounts.get(stores, grant.user_id)
    if user is None or user.disabled:
        return None
    return grant


async def rotate_refresh_token(
    accounts: Accounts, stores: Stores, digest: str, now: int, *, client_id: str
) -> tuple[RefreshToken, Grant | None] | None:
    """Rotate a refresh token (``RefreshTokenStore.rotate``) and read its grant as
    ``live_grant`` does: one statement for tokensmith's own users on PostgreSQL
    (``RefreshTokenStore.rotate_with_grant``), the rotation then ``live_grant`` otherwise."""
    if isinstance(accounts, StoreAccounts):
        return await stores.refresh_tokens.rotate_with_grant(digest, now, client_id=client_id)
    token = await stores.refresh_tokens.rotate(digest, now, client_id=client_id)
    if token is None:
        return None
    return token, await live_grant(accounts, stores, token.grant_id)


async def end_access(
    stores: Stores, user_id: str, now: int, *, keep_session: str | None = None
) -> tuple[int, int]:
    """End what anyone holds of a user (a password changed or reset, the account disabled or
    deleted, a second factor reset): the security stamp renewed (outstanding authorization
    codes stop working, sign-ins past their password step make no session, and a code
    redemption or a sign-in running concurrently waits for this transaction), every session
    but ``keep_session`` (a digest) ended, then every grant revoked. Returns (sessions ended,
    grants revoked).

    The stamp comes before the sessions and the grants (``SecurityStampStore.renew``): a
    sign-in holds it before it writes its session (``interaction._signed_in``), so a session
    it committed first is deleted here. That is also the sign-in's order of locks (the user
    row and the rows it uses, then the stamp, then the sessions), so the two never wait for
    each other."""
    await stores.security_stamps.renew(user_id)
    if keep_session is None:
        ended = await stores.sessions.delete_for_user(user_id)
    else:
        ended = 0
        for session in await stores.sessions.list_for_user(user_id, now):
            if not hmac.compare_digest(session.digest, keep_session):
                await stores.sessions.delete(session.digest)
                ended += 1
    return ended, await stores.grants.revoke_for_user(user_id, now)


async def forget(stores: Stores, user_id: str, now: int) -> None:
    """Everything tokensmith keeps of a user being deleted, but the audit events: access ended
    (``end_access``), consents withdrawn, second factors, pending links and sign-in
    transactions deleted, and the stored audit events stripped of the client address and
    personal detail (kept under the opaque subject). The caller deletes the user first.

    In the sign-in's order of locks (the user, the factors, links and consents it uses, the
    stamp, then the sessions, then the sign-in transaction), so that a sign-in running at the
    same time never deadlocks with this."""
    await stores.totp.delete(user_id)
    await stores.recovery_codes.delete_all(user_id)
    await stores.passkeys.delete_all(user_id)
    await stores.account_tokens.delete_for_user(user_id)
    for client_id in await stores.consents.list_for_user(user_id):
        await stores.consents.withdraw(user_id, client_id)
    await end_access(stores, user_id, now)
    await stores.interactions.delete_for_user(user_id)
    await stores.audit_trail.forget_user(user_id)


__all__ = [
    "ALL_CAPABILITIES",
    "CREATE",
    "DELETE",
    "UPDATE_EMAIL",
    "UPDATE_PASSWORD",
    "Accounts",
    "StoreAccounts",
    "claims_for",
    "end_access",
    "forget",
    "live_grant",
]
