"""The admin service: every administrative operation on a tokensmith database, each one
transaction (used by the CLI, the demo and tests, and the one place for their rules).

Every refusal is an :class:`AdminError` whose message is one line that says what is wrong and how
to fix it, so that every front end (the CLI, an admin API) gives the same answer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tokensmith.core import registration
from tokensmith.core.accounts import end_access, forget
from tokensmith.core.admin_access import (
    ADMIN_SCOPE_DESCRIPTIONS,
    ADMIN_SCOPES,
    admin_api_identifier,
)
from tokensmith.core.client_narrowing import withdraw_narrowed
from tokensmith.core.clock import Clock, system_clock
from tokensmith.core.dynamic_registration import new_initial_access_token
from tokensmith.core.errors import OAuthError
from tokensmith.core.keys import SUPPORTED_ALGS, KeyRing, KeyState, SigningKey
from tokensmith.core.models import (
    AccountToken,
    Api,
    Client,
    Grant,
    InitialAccessToken,
    Session,
    User,
)
from tokensmith.core.passwords import Passwords, normalize_login
from tokensmith.core.ports import Conflict
from tokensmith.core.registration import ClientMetadata, NewClient
from tokensmith.core.scopes import OIDC_SCOPES
from tokensmith.core.self_service import NewInvitation, new_invitation, normalize_email
from tokensmith.settings import Settings
from tokensmith.storage.compose import Database
from tokensmith.storage.sqlalchemy import keystore, migrate
from tokensmith.storage.sqlalchemy.engine import create_engine, sqlite_file
from tokensmith.storage.sqlalchemy.prune import PruneReport
from tokensmith.storage.sqlalchemy.prune import prune as prune_expired


def invalidation_channel(settings: Settings) -> str:
    return settings.redis_prefix + "invalidate"


def grant_grace(settings: Settings) -> int:
    """How long a grant with nothing left in it is kept: longer than any token it issued."""
    return max(settings.access_token_ttl, settings.id_token_ttl) + 3600


class AdminError(Exception):
    """An administrative operation was refused; the message says why and what to do."""


class AdminNotFound(AdminError):
    """The API, client, user, grant or session named does not exist (the admin API: 404)."""


class AdminConflict(AdminError):
    """What is to be created exists already (the admin API: 409)."""


_URL_EXAMPLES = (
    "sqlite+aiosqlite:///path/to/tokensmith.db or postgresql+asyncpg://user:password@host/db"
)
#: Database URL schemes people write, and the async driver tokensmith needs instead.
_SYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+pg8000": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


def check_database_url(url: str) -> None:
    """Refuse a database URL that cannot work, before any driver is imported: not a URL, or a
    synchronous driver's scheme (``postgresql://``, ``postgres://``, ``sqlite://``)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AdminError(
            f"TOKENSMITH_DATABASE_URL is not a database URL: use {_URL_EXAMPLES}"
        ) from None
    driver = parsed.drivername
    if driver in _SYNC_DRIVERS:
        fixed = _SYNC_DRIVERS[driver]
        rest = url.split(":", 1)[1]
        example = f"{fixed}:{rest}" if parsed.password is None else f"{fixed}://..."
        raise AdminError(
            f"TOKENSMITH_DATABASE_URL uses {driver}://, a synchronous driver: tokensmith needs "
            f"the async one, {fixed}:// (e.g. {example})"
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise AdminError(
            f"TOKENSMITH_DATABASE_URL names an unsupported database ({driver}): use {_URL_EXAMPLES}"
        )


@dataclass(frozen=True, slots=True)
class KeyStatus:
    key: SigningKey
    state: KeyState


class Admin:
    """``create_database``: whether opening a SQLite file that does not exist creates it (and
    its folders). False for every command but ``db upgrade``: a mistyped path is refused with a
    hint instead of silently becoming a new, empty database.

    A running server shares its own ``db`` (the admin API): then the engine is the server's
    (not disposed here, no migration on entry), ``hashing`` is the server's hasher, whose
    bounded pool runs argon2 off the event loop (``HashingBusy`` when its queue is full), and
    ``on_change`` tells the server's own caches of a changed client or API (``kind``, ``key``)
    at once, besides the Redis broadcast."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        create_database: bool = True,
        db: Database | None = None,
        hashing: Passwords | None = None,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._owned = db is None
        self._hashing = hashing
        self._on_change = on_change
        self._pepper: bytes | None = None
        if db is not None:
            self._engine = db.engine
            self.db = db
            return
        url = settings.database_url
        check_database_url(url)
        path = sqlite_file(url)
        if path is not None and not create_database and not os.path.exists(path):
            raise AdminError(
                f"no database at {os.path.abspath(path)}: check TOKENSMITH_DATABASE_URL, or "
                "create it with `tokensmith db upgrade`"
            )
        self._engine = create_engine(url)
        self.db = Database(self._engine)

    async def __aenter__(self) -> Admin:
        if self._owned:
            await migrate.upgrade(self._engine)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owned:
            await self._engine.dispose()

    async def _changed(self, kind: str, key: str) -> None:
        """Tell running servers (through Redis, when configured) to forget a cached client or
        API now rather than when its cache entry expires."""
        if self._on_change is not None:
            self._on_change(kind, key)
        url = self.settings.redis_url
        if url is None:
            return
        try:
            async with Redis.from_url(
                url.get_secret_value(), socket_timeout=self.settings.redis_timeout
            ) as redis:
                await redis.publish(invalidation_channel(self.settings), f"{kind}:{key}")
        except RedisError:
            pass  # the change is in the database; servers see it within client_cache_ttl

    def now(self) -> int:
        return int(self.clock())

    async def pepper(self) -> bytes:
        if self._pepper is None:
            configured = self.settings.pepper
            self._pepper = (
                configured.get_secret_value().encode()
                if configured is not None
                else await keystore.get_or_create_pepper(self._engine)
            )
        return self._pepper

    async def _hash(self, password: str) -> str:
        """The password's hash (the policy's ``ValueError`` as an ``AdminError``), computed in
        the server's ``hashing`` pool when there is one."""
        try:
            if self._hashing is None:
                return self.passwords().hash(password)
            return await self._hashing.hash_async(password)
        except ValueError as exc:
            raise AdminError(str(exc)) from None

    def passwords(self) -> Passwords:
        s = self.settings
        return Passwords(
            time_cost=s.password_hash_time_cost,
            memory_cost=s.password_hash_memory_cost,
            parallelism=s.password_hash_parallelism,
        )

    # -- APIs --------------------------------------------------------------------------------

    async def create_api(
        self,
        *,
        identifier: str,
        scopes: Iterable[str],
        name: str | None = None,
        descriptions: Mapping[str, str] | None = None,
        dynamic_clients: bool = False,
    ) -> Api:
        """Register an API. ``dynamic_clients``: clients registered at run time (RFC 7591) or
        known by a metadata document may get tokens for it."""
        try:
            api = registration.new_api(
                identifier=identifier,
                scopes=scopes,
                name=name,
                descriptions=descriptions,
                now=self.now(),
                dynamic_clients=dynamic_clients,
            )
        except OAuthError as exc:
            raise AdminError(exc.description) from None
        async with self.db.transaction() as stores:
            try:
                await stores.apis.create(api)
            except Conflict:
                raise AdminConflict(f"an API with identifier {identifier} exists already") from None
        return api

    async def list_apis(self) -> list[Api]:
        async with self.db.transaction() as stores:
            return await stores.apis.list()

    async def require_api(self, identifier: str) -> Api:
        """The API, or an ``AdminNotFound`` saying there is none."""
        async with self.db.transaction() as stores:
            api = await stores.apis.get(identifier)
        if api is None:
            raise AdminNotFound(f"no API {identifier} (tokensmith apis list shows them)")
        return api

    async def delete_api(self, identifier: str, *, force: bool = False) -> list[str]:
        """Remove an API. Refused while clients use it (the message lists them), unless
        ``force``: then the API and the scopes only it defined are removed from those clients,
        in the same transaction, each client validated as by ``update_client`` (so a
        client-credentials client whose only API this is makes it refuse). Every grant for the
        API (so every refresh token) and every recorded access token for it are revoked and the
        consents given for it deleted, in the same transaction. Returns the ids of the clients
        changed."""
        changed: list[str] = []
        async with self.db.transaction() as stores:
            api = await stores.apis.get(identifier)
            if api is None:
                raise AdminNotFound(f"no API {identifier} (tokensmith apis list shows them)")
            users = [c for c in await stores.clients.list() if identifier in c.apis]
            if users and not force:
                ids = ", ".join(c.client_id for c in users)
                raise AdminError(
                    f"API {identifier} is used by client(s) {ids}: remove it from them first "
                    "(clients update --remove-api), or delete with --force to do that here"
                )
            now = self.now()
            for client in users:
                remaining = [a for a in client.apis if a != identifier]
                others = [await stores.apis.get(a) for a in remaining]
                kept = [a for a in others if a is not None]
                defined = {s for a in kept for s in a.scopes}
                scopes = tuple(
                    s
                    for s in client.scopes
                    if s not in api.scopes or s in defined or s in OIDC_SCOPES
                )
                metadata = replace(
                    registration.metadata_of(client), apis=tuple(remaining), scopes=scopes
                )
                try:
                    updated = registration.updated_client(client, metadata, apis=kept)
                except OAuthError as exc:
                    raise AdminError(
                        f"cannot remove API {identifier} from client {client.client_id}: "
                        f"{exc.description}; update or delete that client first"
                    ) from None
                await stores.clients.update(updated, now)
                changed.append(client.client_id)
            # What was granted for it goes with it: an API created again under the same
            # identifier starts with no grant, token or consent of the old one.
            await stores.grants.revoke_for_audience(identifier, now)
            await stores.access_tokens.revoke_for_audience(identifier, now)
            await stores.consents.withdraw_for_api(identifier)
            await stores.apis.delete(identifier)
        await self._changed("api", identifier)
        for client_id in changed:
            await self._changed("client", client_id)
        return changed

    # -- clients -----------------------------------------------------------------------------

    async def create_client(
        self, metadata: ClientMetadata | None = None, /, *, api: str | None = None, **fields: Any
    ) -> NewClient:
        """Register a client described by ``metadata`` (or by its fields given as keywords).
        ``metadata.apis``: the identifiers of the APIs it may get tokens for, the first being its
        default; ``api`` is short for a single one (it comes first when both are given)."""
        if metadata is None:
            metadata = ClientMetadata(**fields)
        elif fields:
            raise TypeError("give the client metadata or its fields, not both")
        if api is not None:
            metadata = replace(metadata, apis=(api, *metadata.apis))
        pepper = await self.pepper()
        identifiers = list(dict.fromkeys(metadata.apis))
        async with self.db.transaction() as stores:
            allowed: list[Api] = []
            for identifier in identifiers:
                found = await stores.apis.get(identifier)
                if found is None:
                    raise AdminError(f"no API with identifier {identifier}: create it first")
                allowed.append(found)
            try:
                created = registration.new_client(
                    metadata, apis=allowed, now=self.now(), pepper=pepper
                )
            except OAuthError as exc:
                raise AdminError(exc.description) from None
            await stores.clients.create(created.client)
        return created

    async def get_client(self, client_id: str) -> Client | None:
        async with self.db.transaction() as stores:
            return await stores.clients.get(client_id)

    async def list_clients(self) -> list[Client]:
        async with self.db.transaction() as stores:
            return await stores.clients.list()

    async def require_client(self, client_id: str) -> Client:
        """The client, or an ``AdminError`` saying there is none."""
        client = await self.get_client(client_id)
        if client is None:
            raise AdminNotFound(f"no client {client_id} (tokensmith clients list shows them)")
        return client

    async def delete_client(self, client_id: str) -> None:
        async with self.db.transaction() as stores:
            if not await stores.clients.delete(client_id):
                raise AdminNotFound(f"no client {client_id} (tokensmith clients list shows them)")
        await self._changed("client", client_id)

    async def update_client(
        self,
        client_id: str,
        *,
        changes: Mapping[str, Any] | None = None,
        add: Mapping[str, Iterable[str]] | None = None,
        remove: Mapping[str, Iterable[str]] | None = None,
    ) -> Client:
        """Change a client: ``changes`` replaces :class:`ClientMetadata` fields, ``add`` and
        ``remove`` change its list fields (``redirect_uris``, ``grant_types``, ``scopes``,
        ``apis``, ``post_logout_redirect_uris``). The result is validated as a new registration;
        the client id and secret stay. Its type, authentication method and nativeness cannot
        change.

        APIs or scopes the client loses (removed, or left out of a replaced list) take what was
        given for them with them, in the same transaction
        (``core.client_narrowing.withdraw_narrowed``): the client's grants for a removed API or
        holding a removed scope are revoked (so their refresh tokens), its recorded access tokens
        for them too, and its users' consents for them withdrawn. Given back later, the API or
        scope revives none of it. Other clients keep theirs."""
        names = {f.name for f in fields(ClientMetadata)}
        lists = {"redirect_uris", "grant_types", "scopes", "apis", "post_logout_redirect_uris"}
        for given, allowed in ((changes or {}, names), (add or {}, lists), (remove or {}, lists)):
            unknown = sorted(k for k in given if k not in allowed)
            if unknown:
                raise AdminError(
                    f"cannot change {', '.join(unknown)} of a client; these can: "
                    f"{', '.join(sorted(allowed))}"
                )
        async with self.db.transaction() as stores:
            client = await stores.clients.get(client_id)
            if client is None:
                raise AdminNotFound(f"no client {client_id} (tokensmith clients list shows them)")
            metadata = replace(registration.metadata_of(client), **dict(changes or {}))
            lists_now: dict[str, Any] = {}
            for name, values in (remove or {}).items():
                current: tuple[str, ...] = getattr(metadata, name)
                dropped = tuple(values)
                gone = [v for v in dropped if v not in current]
                if gone:
                    what = name[:-1].replace("_", " ")
                    raise AdminError(
                        f"client {client_id} has no {what} {' '.join(gone)}; "
                        f"it has: {' '.join(current) or 'none'}"
                    )
                lists_now[name] = tuple(v for v in current if v not in dropped)
            metadata = replace(metadata, **lists_now)
            for name, values in (add or {}).items():
                lists_now[name] = tuple(dict.fromkeys((*getattr(metadata, name), *values)))
            metadata = replace(metadata, **lists_now)
            apis: list[Api] = []
            for identifier in dict.fromkeys(metadata.apis):
                found = await stores.apis.get(identifier)
                if found is None:
                    raise AdminError(
                        f"no API with identifier {identifier}: create it first (apis create)"
                    )
                apis.append(found)
            try:
                updated = registration.updated_client(client, metadata, apis=apis)
            except OAuthError as exc:
                raise AdminError(exc.description) from None
            now = self.now()
            await stores.clients.update(updated, now)
            await withdraw_narrowed(stores, client, updated, now)
        await self._changed("client", client_id)
        return updated

    async def rotate_client_secret(self, client_id: str) -> str:
        pepper = await self.pepper()
        async with self.db.transaction() as stores:
            client = await stores.clients.get(client_id)
            if client is None:
                raise AdminNotFound(f"no client {client_id} (tokensmith clients list shows them)")
            if client.secret_digest is None:
                raise AdminError(f"client {client_id} does not authenticate with a secret")
            secret, secret_digest = registration.new_client_secret(pepper)
            await stores.clients.set_secret_digest(client_id, secret_digest, self.now())
        await self._changed("client", client_id)
        return secret

    # -- users -------------------------------------------------------------------------------

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        email_verified: bool = False,
        name: str | None = None,
    ) -> User:
        try:
            await self.settings.password_rules().check(password, context=(username, email))
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        password_hash = await self._hash(password)
        try:
            user = registration.new_user(
                username=username,
                password_hash=password_hash,
                email=email,
                email_verified=email_verified,
                name=name,
                now=self.now(),
            )
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        async with self.db.transaction() as stores:
            try:
                await stores.users.create(user)
            except Conflict:
                raise AdminConflict("a user with this username or email exists already") from None
        return user

    async def find_user(self, login: str) -> User | None:
        async with self.db.transaction() as stores:
            user = await stores.users.get(login)
            if user is None:
                try:
                    user = await stores.users.find_by_login(normalize_login(login))
                except ValueError:
                    return None
            return user

    async def list_users(self) -> list[User]:
        async with self.db.transaction() as stores:
            return await stores.users.list()

    async def require_user(self, login: str) -> User:
        """The user with this id, username or email, or an ``AdminNotFound``."""
        user = await self.find_user(login)
        if user is None:
            raise AdminNotFound(f"no user {login}")
        return user

    async def set_password(self, login: str, password: str) -> None:
        user = await self.require_user(login)
        try:
            await self.settings.password_rules().check(
                password, context=(user.username, user.email)
            )
            password_hash = await self._hash(password)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        async with self.db.transaction() as stores:
            now = self.now()
            await stores.users.set_password_hash(user.id, password_hash, now)
            # a new password ends every session, code and token issued under the old one
            await end_access(stores, user.id, now)

    async def update_profile(
        self,
        login: str,
        *,
        name: str | None = None,
        email: str | None = None,
        email_verified: bool | None = None,
    ) -> User:
        """Change a user's name, email or email_verified (``None`` keeps the current value).
        A new email is unverified unless ``email_verified`` says otherwise."""
        user = await self.require_user(login)
        new_email = user.email
        if email is not None:
            try:
                new_email = registration.new_user(
                    username=user.username, password_hash=None, email=email, now=0
                ).email
            except ValueError as exc:
                raise AdminError(str(exc)) from None
        verified = user.email_verified if new_email == user.email else False
        if email_verified is not None:
            verified = email_verified
        async with self.db.transaction() as stores:
            try:
                await stores.users.set_profile(
                    user.id,
                    name=name.strip() if name is not None else user.name,
                    email=new_email,
                    email_verified=verified,
                    now=self.now(),
                )
            except Conflict:
                raise AdminConflict("another user has this email") from None
            updated = await stores.users.get(user.id)
        if updated is None:
            raise AdminError(f"user {login} was deleted meanwhile")
        return updated

    async def reset_mfa(self, login: str) -> bool:
        """Turn off a user's two-step verification (they lost their authenticator and their
        recovery codes): the authenticator key, the recovery codes and the passkeys are
        deleted, and the password alone signs them in until they set one up again. Their
        sessions end and their grants (and outstanding codes) are revoked: whoever holds the lost
        authenticator keeps nothing it opened. ``False``: it was off."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            had_key = await stores.totp.delete(user.id)
            had_codes = await stores.recovery_codes.delete_all(user.id)
            had_passkeys = await stores.passkeys.delete_all(user.id)
            await end_access(stores, user.id, self.now())
        return had_key or bool(had_codes) or bool(had_passkeys)

    async def set_disabled(self, login: str, disabled: bool) -> User:
        """Disable a user (their sessions end and their grants are revoked) or enable them
        again (they sign in anew; nothing revoked comes back)."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            now = self.now()
            await stores.users.set_disabled(user.id, disabled, now)
            if disabled:
                await end_access(stores, user.id, now)
        return replace(user, disabled=disabled)

    async def delete_user(self, login: str) -> User:
        """Delete a user: their sessions end, their grants (and so every token issued from them)
        are revoked and their consents withdrawn, in one transaction. The revoked grants and the
        audit events stay (the grants until ``db prune``, the events for their retention)."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            if not await stores.users.delete(user.id):
                raise AdminError(f"user {login} was deleted meanwhile")
            await forget(stores, user.id, self.now())
        return user

    async def list_grants(self, login: str) -> list[Grant]:
        """A user's grants (what each client got in one authorization), revoked ones
        included, oldest first."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            return await stores.grants.list_for_user(user.id)

    async def list_sessions(self, login: str) -> list[Session]:
        """A user's live sign-in sessions at the server, oldest first."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            return await stores.sessions.list_for_user(user.id, self.now())

    async def revoke_grant(self, login: str, grant_id: str) -> Grant:
        """Revoke one of a user's grants: every token issued from it stops working."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            grant = await stores.grants.get(grant_id)
            if grant is None or grant.user_id != user.id:
                raise AdminNotFound(
                    f"user {login} has no grant {grant_id} (users grants {login} lists them)"
                )
            if grant.revoked_at is not None:
                raise AdminError(f"grant {grant_id} is revoked already")
            now = self.now()
            await stores.grants.revoke(grant_id, now)
        return replace(grant, revoked_at=now)

    async def end_session(self, login: str, session_id: str) -> None:
        """End one of a user's sessions (``session_id``: its id as ``list_sessions`` gives
        it); the grants made in it stay (``revoke_grant`` ends those)."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            live = await stores.sessions.list_for_user(user.id, self.now())
            if not any(s.digest == session_id for s in live):
                raise AdminNotFound(
                    f"user {login} has no session {session_id} (users sessions {login} lists them)"
                )
            await stores.sessions.delete(session_id)

    async def end_sessions(self, login: str) -> int:
        """End every session of a user (they sign in anew); their grants stay. Returns how
        many ended."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            # the codes issued in them and the sign-ins under way too; before the sessions
            # (``SecurityStampStore.renew``)
            await stores.security_stamps.renew(user.id)
            return await stores.sessions.delete_for_user(user.id)

    async def revoke_grants(self, login: str) -> int:
        """Revoke every grant of a user (every token issued from them stops working); their
        sessions stay. Returns how many were revoked."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            await stores.security_stamps.renew(user.id)  # and the codes not yet redeemed
            return await stores.grants.revoke_for_user(user.id, self.now())

    async def revoke_user(self, login: str) -> tuple[int, int]:
        """End every session of a user and revoke every grant (they sign in and consent
        anew); the account stays usable. Returns (sessions ended, grants revoked)."""
        user = await self.require_user(login)
        async with self.db.transaction() as stores:
            return await end_access(stores, user.id, self.now())

    # -- invitations -------------------------------------------------------------------------

    async def invite(
        self, email: str, *, name: str | None = None, ttl: int | None = None
    ) -> NewInvitation:
        """Invite ``email`` to create an account (``core.self_service.new_invitation``): the
        invitation is stored (its digest) and returned with its link, shown once, and the
        message that carries it; sending that message is the caller's (the CLI waits for the
        mail server, the admin API queues it). A previous invitation to the address is
        withdrawn. Refused while sign-up is ``off`` and for an address that has an account."""
        s = self.settings
        if s.signup == "off":
            raise AdminError(
                "sign-up is off, so no invitation can be accepted: set TOKENSMITH_SIGNUP=invite "
                "(only invited people sign up), open or domains"
            )
        lifetime = s.invitation_ttl if ttl is None else ttl
        if not 600 <= lifetime <= 30 * 86400:
            raise AdminError("an invitation lives between 10 minutes and 30 days (--ttl)")
        now = self.now()
        try:
            new = new_invitation(
                email,
                name=name,
                pepper=await self.pepper(),
                now=now,
                ttl=lifetime,
                signup_url=s.url(s.signup_path),
            )
        except ValueError:
            raise AdminError(f"{email!r} is not an e-mail address") from None
        address = new.token.email
        async with self.db.transaction() as stores:
            if await stores.users.find_by_login(address) is not None:
                raise AdminConflict(f"a user with the address {address} exists already")
            await stores.account_tokens.revoke_for_email(address, "invitation", now)
            await stores.account_tokens.create(new.token)
        return new

    async def list_invitations(self) -> list[AccountToken]:
        """The invitations not used, withdrawn or expired yet, oldest first."""
        async with self.db.transaction() as stores:
            return await stores.account_tokens.list_pending("invitation", self.now())

    async def revoke_invitation(self, email: str) -> None:
        """Withdraw the pending invitation to ``email``: its link stops working."""
        try:
            address = normalize_email(email)
        except ValueError:
            raise AdminError(f"{email!r} is not an e-mail address") from None
        async with self.db.transaction() as stores:
            if not await stores.account_tokens.revoke_for_email(address, "invitation", self.now()):
                raise AdminNotFound(
                    f"no pending invitation to {address} (users invitations lists them)"
                )

    # -- the admin API ---------------------------------------------------------------------------

    async def bootstrap_admin(
        self, *, name: str = "tokensmith admin", scopes: Iterable[str] | None = None
    ) -> NewClient:
        """A client for the admin API: registers the admin API (``<issuer>/admin/v1``, every
        admin scope) if it is missing, then a confidential client_credentials client for it
        with ``scopes`` (default: every admin scope). Its secret is in the result, once."""
        identifier = admin_api_identifier(self.settings.issuer)
        wanted = tuple(ADMIN_SCOPES if scopes is None else dict.fromkeys(scopes))
        unknown = [s for s in wanted if s not in ADMIN_SCOPES]
        if unknown or not wanted:
            raise AdminError(
                f"not admin scope(s): {' '.join(unknown) or '(none given)'}; the admin scopes are "
                f"{' '.join(ADMIN_SCOPES)}"
            )
        async with self.db.transaction() as stores:
            existing = await stores.apis.get(identifier)
        if existing is None:
            await self.create_api(
                identifier=identifier,
                scopes=ADMIN_SCOPES,
                name="tokensmith admin API",
                descriptions=ADMIN_SCOPE_DESCRIPTIONS,
            )
        else:
            missing = [s for s in wanted if s not in existing.scopes]
            if missing:
                raise AdminError(
                    f"the admin API {identifier} lacks scope(s) {' '.join(missing)}: it was "
                    "registered by hand; delete it (apis delete --force) and bootstrap again"
                )
        return await self.create_client(
            name=name,
            client_type="confidential",
            grant_types=("client_credentials",),
            scopes=wanted,
            apis=(identifier,),
        )

    # -- keys --------------------------------------------------------------------------------

    async def list_keys(self) -> list[SigningKey]:
        return await keystore.load_keys(self._engine, kek=self.settings.kek())

    async def key_states(self) -> list[KeyStatus]:
        """Every signing key with what it does now (next, signing, retiring, retired), in the
        order they sign."""
        ring = KeyRing(await self.list_keys())
        now = self.now()
        return [KeyStatus(k, ring.state(k, now)) for k in ring.keys]

    async def rotate_key(
        self, alg: str | None = None, *, publish_ahead: int | None = None
    ) -> SigningKey:
        """Add a key that is published now and signs after ``publish_ahead`` seconds; the
        current keys of that algorithm retire then and stay published until their tokens
        have expired."""
        alg = alg or self.settings.signing_alg
        if alg not in SUPPORTED_ALGS:
            raise AdminError(f"unsupported algorithm {alg}; use one of {', '.join(SUPPORTED_ALGS)}")
        now = self.now()
        ahead = self.settings.key_publish_ahead if publish_ahead is None else publish_ahead
        key = await keystore.add_key(
            self._engine, alg=alg, now=now, activates_at=now + ahead, kek=self.settings.kek()
        )
        longest = max(
            [self.settings.access_token_ttl, self.settings.id_token_ttl]
            + [c.access_token_ttl or 0 for c in await self.list_clients()]
        )
        await keystore.retire_keys(
            self._engine,
            alg=alg,
            except_kid=key.kid,
            retire_at=key.activates_at,
            expires_at=key.activates_at + longest,
        )
        return key

    # -- dynamic client registration (RFC 7591) ---------------------------------------------

    async def create_initial_access_token(
        self, *, expires_in: int | None = None, uses: int | None = None, note: str = ""
    ) -> tuple[str, InitialAccessToken]:
        """An initial access token for ``POST /register`` (``registration`` = ``token``): the
        token (shown once, stored as a digest) and its record. ``expires_in`` seconds (None:
        never), ``uses`` registrations (None: any number)."""
        try:
            token, record = new_initial_access_token(
                pepper=await self.pepper(),
                now=self.now(),
                expires_in=expires_in,
                uses=uses,
                note=note,
            )
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        async with self.db.transaction() as stores:
            await stores.initial_access_tokens.create(record)
        return token, record

    async def list_initial_access_tokens(self) -> list[InitialAccessToken]:
        async with self.db.transaction() as stores:
            return await stores.initial_access_tokens.list()

    async def revoke_initial_access_token(self, token_id: str) -> None:
        """Revoke the initial access token whose id (the start of its digest, as listed; at
        least 8 characters) is ``token_id``."""
        if len(token_id) < 8:
            raise AdminError("give at least 8 characters of the id (registration token list)")
        async with self.db.transaction() as stores:
            found = [
                t
                for t in await stores.initial_access_tokens.list()
                if t.digest.startswith(token_id)
            ]
            if len(found) != 1:
                raise AdminError(
                    f"no initial access token {token_id}"
                    if not found
                    else f"{token_id} names more than one token: give more of its id"
                )
            await stores.initial_access_tokens.delete(found[0].digest)

    async def prune(self, *, batch: int = 1000, max_batches: int = 100) -> PruneReport:
        """Delete expired codes, sessions, transactions, tokens, jtis, unused grants and audit
        events older than ``audit_retention_days``."""
        return await prune_expired(
            self._engine,
            now=self.now(),
            grant_grace=grant_grace(self.settings),
            audit_retention=self.settings.audit_retention_days * 86400,
            registered_client_idle=self.settings.registered_client_idle_days * 86400,
            batch=batch,
            max_batches=max_batches,
        )

    async def prune_keys(self) -> int:
        """Delete retired keys whose tokens have all expired."""
        return await keystore.prune_keys(self._engine, now=self.now())
