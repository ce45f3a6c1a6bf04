"""The admin service: every administrative operation on a tokensmith database, each one
transaction (used by the CLI, the demo and tests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tokensmith.core import registration
from tokensmith.core.clock import Clock, system_clock
from tokensmith.core.errors import OAuthError
from tokensmith.core.keys import SUPPORTED_ALGS, SigningKey
from tokensmith.core.models import Api, Client, User
from tokensmith.core.passwords import Passwords, normalize_login
from tokensmith.core.ports import Conflict
from tokensmith.core.registration import ClientMetadata, NewClient
from tokensmith.settings import Settings
from tokensmith.storage.compose import Database
from tokensmith.storage.sqlalchemy import keystore, migrate
from tokensmith.storage.sqlalchemy.engine import create_engine
from tokensmith.storage.sqlalchemy.prune import PruneReport
from tokensmith.storage.sqlalchemy.prune import prune as prune_expired


def invalidation_channel(settings: Settings) -> str:
    return settings.redis_prefix + "invalidate"


def grant_grace(settings: Settings) -> int:
    """How long a grant with nothing left in it is kept: longer than any token it issued."""
    return max(settings.access_token_ttl, settings.id_token_ttl) + 3600


class AdminError(Exception):
    """An administrative operation was refused; the message says why."""


class Admin:
    def __init__(self, settings: Settings, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self._engine = create_engine(settings.database_url)
        self.db = Database(self._engine)
        self._pepper: bytes | None = None

    async def __aenter__(self) -> Admin:
        await migrate.upgrade(self._engine)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._engine.dispose()

    async def _changed(self, kind: str, key: str) -> None:
        """Tell running servers (through Redis, when configured) to forget a cached client or
        API now rather than when its cache entry expires."""
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
    ) -> Api:
        try:
            api = registration.new_api(
                identifier=identifier,
                scopes=scopes,
                name=name,
                descriptions=descriptions,
                now=self.now(),
            )
        except OAuthError as exc:
            raise AdminError(exc.description) from None
        async with self.db.transaction() as stores:
            try:
                await stores.apis.create(api)
            except Conflict:
                raise AdminError(f"an API with identifier {identifier} exists already") from None
        return api

    async def list_apis(self) -> list[Api]:
        async with self.db.transaction() as stores:
            return await stores.apis.list()

    async def delete_api(self, identifier: str) -> bool:
        async with self.db.transaction() as stores:
            deleted = await stores.apis.delete(identifier)
        await self._changed("api", identifier)
        return deleted

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

    async def delete_client(self, client_id: str) -> bool:
        async with self.db.transaction() as stores:
            deleted = await stores.clients.delete(client_id)
        await self._changed("client", client_id)
        return deleted

    async def rotate_client_secret(self, client_id: str) -> str:
        pepper = await self.pepper()
        async with self.db.transaction() as stores:
            client = await stores.clients.get(client_id)
            if client is None:
                raise AdminError(f"no client {client_id}")
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
            user = registration.new_user(
                username=username,
                password_hash=self.passwords().hash(password),
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
                raise AdminError("a user with this username or email exists already") from None
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

    async def _require_user(self, login: str) -> User:
        user = await self.find_user(login)
        if user is None:
            raise AdminError(f"no user {login}")
        return user

    async def set_password(self, login: str, password: str) -> None:
        user = await self._require_user(login)
        try:
            password_hash = self.passwords().hash(password)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        async with self.db.transaction() as stores:
            now = self.now()
            await stores.users.set_password_hash(user.id, password_hash, now)
            # a new password ends every session and every token issued under the old one
            await stores.sessions.delete_for_user(user.id)
            await stores.grants.revoke_for_user(user.id, now)

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
        user = await self._require_user(login)
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
                raise AdminError("another user has this email") from None
            updated = await stores.users.get(user.id)
        if updated is None:
            raise AdminError(f"user {login} was deleted meanwhile")
        return updated

    async def reset_mfa(self, login: str) -> bool:
        """Turn off a user's two-step verification (they lost their authenticator and their
        recovery codes): the authenticator key and the recovery codes are deleted, and the
        password alone signs them in until they set it up again. ``False``: it was off."""
        user = await self._require_user(login)
        async with self.db.transaction() as stores:
            had_key = await stores.totp.delete(user.id)
            had_codes = await stores.recovery_codes.delete_all(user.id)
        return had_key or bool(had_codes)

    async def set_disabled(self, login: str, disabled: bool) -> None:
        user = await self._require_user(login)
        async with self.db.transaction() as stores:
            now = self.now()
            await stores.users.set_disabled(user.id, disabled, now)
            if disabled:
                await stores.sessions.delete_for_user(user.id)
                await stores.grants.revoke_for_user(user.id, now)

    # -- keys --------------------------------------------------------------------------------

    async def list_keys(self) -> list[SigningKey]:
        return await keystore.load_keys(self._engine, kek=self.settings.kek())

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

    async def prune(self, *, batch: int = 1000, max_batches: int = 100) -> PruneReport:
        """Delete expired codes, sessions, transactions, tokens, jtis, unused grants and audit
        events older than ``audit_retention_days``."""
        return await prune_expired(
            self._engine,
            now=self.now(),
            grant_grace=grant_grace(self.settings),
            audit_retention=self.settings.audit_retention_days * 86400,
            batch=batch,
            max_batches=max_batches,
        )

    async def prune_keys(self) -> int:
        """Delete retired keys whose tokens have all expired."""
        return await keystore.prune_keys(self._engine, now=self.now())
