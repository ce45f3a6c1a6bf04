"""The storage Protocols on SQLAlchemy Core, sharing one connection and transaction per request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from sqlalchemy import RowMapping, Table, case, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.core.models import (
    AccessTokenRecord,
    Api,
    AuthMethod,
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    ClientType,
    Grant,
    Interaction,
    RefreshToken,
    Session,
    TokenFormat,
    User,
)
from tokensmith.core.ports import Conflict
from tokensmith.core.throttle import BackoffPolicy, FailureCount, Reservation
from tokensmith.storage.redis import (
    RedisAssertionJtiStore,
    RedisCodeStore,
    RedisDenyList,
    RedisInteractionStore,
    RedisLoginFailureStore,
)
from tokensmith.storage.sqlalchemy import tables as t


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(" ")) if value else ()


def _join(values: tuple[str, ...]) -> str:
    return " ".join(values)


class _Store:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, stmt: Any) -> RowMapping | None:
        row = (await self._conn.execute(stmt)).mappings().first()
        return row

    async def _insert(self, table: Table, values: dict[str, Any]) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(table).values(**values))
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from None


class SqlApiStore(_Store):
    async def get(self, identifier: str) -> Api | None:
        row = await self._one(select(t.apis).where(t.apis.c.identifier == identifier))
        return _api(row) if row else None

    async def create(self, api: Api) -> None:
        await self._insert(
            t.apis,
            {
                "identifier": api.identifier,
                "name": api.name,
                "scopes": _join(api.scopes),
                "scope_descriptions": json.dumps(api.descriptions),
                "created_at": api.created_at,
            },
        )

    async def list(self) -> list[Api]:
        rows = (await self._conn.execute(select(t.apis).order_by(t.apis.c.identifier))).mappings()
        return [_api(r) for r in rows]

    async def delete(self, identifier: str) -> bool:
        result = await self._conn.execute(delete(t.apis).where(t.apis.c.identifier == identifier))
        return bool(result.rowcount)


def _api(row: RowMapping) -> Api:
    return Api(
        identifier=row["identifier"],
        name=row["name"],
        scopes=_split(row["scopes"]),
        created_at=row["created_at"],
        descriptions=json.loads(row["scope_descriptions"]),
    )


class SqlClientStore(_Store):
    async def get(self, client_id: str) -> Client | None:
        row = await self._one(select(t.clients).where(t.clients.c.client_id == client_id))
        return client_from_row(row) if row else None

    async def create(self, client: Client) -> None:
        await self._insert(t.clients, client_to_row(client))

    async def list(self) -> list[Client]:
        rows = await self._conn.execute(select(t.clients).order_by(t.clients.c.created_at))
        return [client_from_row(r) for r in rows.mappings()]

    async def delete(self, client_id: str) -> bool:
        result = await self._conn.execute(
            delete(t.clients).where(t.clients.c.client_id == client_id)
        )
        return bool(result.rowcount)

    async def set_secret_digest(self, client_id: str, secret_digest: str, now: int) -> bool:
        result = await self._conn.execute(
            update(t.clients)
            .where(t.clients.c.client_id == client_id)
            .values(secret_digest=secret_digest, updated_at=now)
        )
        return bool(result.rowcount)


def client_to_row(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "client_type": client.client_type,
        "secret_digest": client.secret_digest,
        "redirect_uris": _join(client.redirect_uris),
        "grant_types": _join(client.grant_types),
        "scopes": _join(client.scopes),
        "apis": _join(client.apis),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "first_party": client.first_party,
        "native": client.native,
        "can_introspect": client.can_introspect,
        "access_token_format": client.access_token_format,
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_idle_ttl": client.refresh_token_idle_ttl,
        "refresh_token_absolute_ttl": client.refresh_token_absolute_ttl,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": _join(client.post_logout_redirect_uris),
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "created_at": client.created_at,
        "updated_at": client.created_at,
    }


def client_from_row(row: RowMapping) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        client_type=cast(ClientType, row["client_type"]),
        secret_digest=row["secret_digest"],
        redirect_uris=_split(row["redirect_uris"]),
        grant_types=_split(row["grant_types"]),
        scopes=_split(row["scopes"]),
        apis=_split(row["apis"]),
        token_endpoint_auth_method=cast(AuthMethod, row["token_endpoint_auth_method"]),
        first_party=bool(row["first_party"]),
        native=bool(row["native"]),
        can_introspect=bool(row["can_introspect"]),
        access_token_format=cast(TokenFormat, row["access_token_format"]),
        access_token_ttl=row["access_token_ttl"],
        refresh_token_idle_ttl=row["refresh_token_idle_ttl"],
        refresh_token_absolute_ttl=row["refresh_token_absolute_ttl"],
        id_token_signed_response_alg=row["id_token_signed_response_alg"],
        post_logout_redirect_uris=_split(row["post_logout_redirect_uris"]),
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        created_at=row["created_at"],
    )


class SqlUserStore(_Store):
    async def get(self, user_id: str) -> User | None:
        row = await self._one(select(t.users).where(t.users.c.id == user_id))
        return _user(row) if row else None

    async def find_by_login(self, login: str) -> User | None:
        column = t.users.c.email if "@" in login else t.users.c.username
        row = await self._one(select(t.users).where(column == login))
        return _user(row) if row else None

    async def create(self, user: User) -> None:
        await self._insert(
            t.users,
            {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
                "password_hash": user.password_hash,
                "disabled": user.disabled,
                "created_at": user.created_at,
                "updated_at": user.updated_at,
            },
        )

    async def list(self) -> list[User]:
        rows = await self._conn.execute(select(t.users).order_by(t.users.c.username))
        return [_user(r) for r in rows.mappings()]

    async def set_password_hash(self, user_id: str, password_hash: str, now: int) -> bool:
        return await self._update(user_id, password_hash=password_hash, updated_at=now)

    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> bool:
        return await self._update(user_id, disabled=disabled, updated_at=now)

    async def set_profile(
        self, user_id: str, *, name: str | None, email: str | None, email_verified: bool, now: int
    ) -> bool:
        try:
            async with self._conn.begin_nested():
                return await self._update(
                    user_id, name=name, email=email, email_verified=email_verified, updated_at=now
                )
        except IntegrityError:
            raise Conflict("another user has this email") from None

    async def _update(self, user_id: str, **values: Any) -> bool:
        result = await self._conn.execute(
            update(t.users).where(t.users.c.id == user_id).values(**values)
        )
        return bool(result.rowcount)


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        email_verified=bool(row["email_verified"]),
        name=row["name"],
        disabled=bool(row["disabled"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlCodeStore(_Store):
    async def create(self, code: AuthorizationCode) -> None:
        await self._conn.execute(
            insert(t.authorization_codes).values(
                digest=code.digest,
                client_id=code.client_id,
                user_id=code.user_id,
                redirect_uri=code.redirect_uri,
                redirect_uri_sent=code.redirect_uri_sent,
                scopes=_join(code.scopes),
                audience=code.audience,
                code_challenge=code.code_challenge,
                nonce=code.nonce,
                auth_time=code.auth_time,
                session_id=code.session_id,
                grant_id=code.grant_id,
                expires_at=code.expires_at,
                consumed_at=None,
            )
        )

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        codes = t.authorization_codes
        row = await self._one(
            update(codes)
            .where(codes.c.digest == digest, codes.c.consumed_at.is_(None))
            .values(consumed_at=now)
            .returning(*codes.c)
        )
        return _code(row) if row else None

    async def get(self, digest: str) -> AuthorizationCode | None:
        codes = t.authorization_codes
        row = await self._one(select(codes).where(codes.c.digest == digest))
        return _code(row) if row else None


def _code(row: RowMapping) -> AuthorizationCode:
    return AuthorizationCode(
        digest=row["digest"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        redirect_uri_sent=bool(row["redirect_uri_sent"]),
        scopes=_split(row["scopes"]),
        audience=row["audience"],
        code_challenge=row["code_challenge"],
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        session_id=row["session_id"],
        grant_id=row["grant_id"],
        expires_at=row["expires_at"],
        consumed_at=row["consumed_at"],
    )


class SqlGrantStore(_Store):
    async def create(self, grant: Grant) -> None:
        await self._insert(
            t.grants,
            {
                "id": grant.id,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "scopes": _join(grant.scopes),
                "audience": grant.audience,
                "auth_time": grant.auth_time,
                "created_at": grant.created_at,
                "revoked_at": grant.revoked_at,
                "session_id": grant.session_id,
            },
        )

    async def get(self, grant_id: str) -> Grant | None:
        row = await self._one(select(t.grants).where(t.grants.c.id == grant_id))
        if row is None:
            return None
        return Grant(
            id=row["id"],
            client_id=row["client_id"],
            user_id=row["user_id"],
            scopes=_split(row["scopes"]),
            audience=row["audience"],
            auth_time=row["auth_time"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
            session_id=row["session_id"],
        )

    async def revoke(self, grant_id: str, now: int) -> bool:
        result = await self._conn.execute(
            update(t.grants)
            .where(t.grants.c.id == grant_id, t.grants.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def revoke_for_user(self, user_id: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g).where(g.c.user_id == user_id, g.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_client(self, user_id: str, client_id: str, now: int) -> int:
        g = t.grants
        result = await self._conn.execute(
            update(g)
            .where(g.c.user_id == user_id, g.c.client_id == client_id, g.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    async def revoke_for_session(self, session_id: str, now: int) -> int:
        g = t.grants
        rows = await self._conn.execute(
            select(g.c.id, g.c.scopes).where(g.c.session_id == session_id, g.c.revoked_at.is_(None))
        )
        ids = [r.id for r in rows if "offline_access" not in _split(r.scopes)]
        if not ids:
            return 0
        result = await self._conn.execute(update(g).where(g.c.id.in_(ids)).values(revoked_at=now))
        return int(result.rowcount)


class SqlAccessTokenStore(_Store):
    __slots__ = ("_denylist",)

    def __init__(self, conn: AsyncConnection, denylist: RedisDenyList | None = None) -> None:
        super().__init__(conn)
        self._denylist = denylist

    async def record(self, token: AccessTokenRecord) -> None:
        await self._conn.execute(
            insert(t.access_tokens).values(
                jti=token.jti,
                digest=token.digest,
                grant_id=token.grant_id,
                client_id=token.client_id,
                subject=token.subject,
                scopes=_join(token.scopes),
                audience=token.audience,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
            )
        )

    async def get(self, jti: str) -> AccessTokenRecord | None:
        a = t.access_tokens
        row = await self._one(select(a).where(a.c.jti == jti))
        return _access_token(row) if row else None

    async def get_by_digest(self, digest: str) -> AccessTokenRecord | None:
        a = t.access_tokens
        row = await self._one(select(a).where(a.c.digest == digest))
        return _access_token(row) if row else None

    async def revoke(self, jti: str, now: int) -> bool:
        a = t.access_tokens
        result = await self._conn.execute(
            update(a).where(a.c.jti == jti, a.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def deny_jti(self, jti: str, expires_at: int) -> None:
        if self._denylist is not None:
            await self._denylist.deny(jti, expires_at)
            return
        r = t.revoked_jtis
        exists = await self._one(select(r.c.jti).where(r.c.jti == jti))
        if exists is None:
            await self._conn.execute(insert(r).values(jti=jti, expires_at=expires_at))

    async def is_denied(self, jti: str) -> bool:
        if self._denylist is not None:
            return await self._denylist.is_denied(jti)
        r = t.revoked_jtis
        return await self._one(select(r.c.jti).where(r.c.jti == jti)) is not None


def _access_token(row: RowMapping) -> AccessTokenRecord:
    return AccessTokenRecord(
        jti=row["jti"],
        digest=row["digest"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        subject=row["subject"],
        scopes=_split(row["scopes"]),
        audience=row["audience"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class SqlRefreshTokenStore(_Store):
    async def create(self, token: RefreshToken) -> None:
        await self._conn.execute(
            insert(t.refresh_tokens).values(
                digest=token.digest,
                grant_id=token.grant_id,
                client_id=token.client_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                absolute_expires_at=token.absolute_expires_at,
                rotated_at=None,
            )
        )

    async def rotate(self, digest: str, now: int) -> RefreshToken | None:
        r = t.refresh_tokens
        row = await self._one(
            update(r)
            .where(r.c.digest == digest, r.c.rotated_at.is_(None))
            .values(rotated_at=now)
            .returning(*r.c)
        )
        return _refresh_token(row) if row else None

    async def get(self, digest: str) -> RefreshToken | None:
        r = t.refresh_tokens
        row = await self._one(select(r).where(r.c.digest == digest))
        return _refresh_token(row) if row else None


def _refresh_token(row: RowMapping) -> RefreshToken:
    return RefreshToken(
        digest=row["digest"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        absolute_expires_at=row["absolute_expires_at"],
        rotated_at=row["rotated_at"],
    )


class SqlAssertionJtiStore(_Store):
    async def use(self, client_id: str, jti: str, expires_at: int) -> bool:
        try:
            await self._insert(
                t.used_jtis, {"client_id": client_id, "jti": jti, "expires_at": expires_at}
            )
        except Conflict:
            return False
        return True


class SqlLoginFailureStore(_Store):
    """Login attempt counters in ``ts_login_failures``.

    A reservation is one ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <admitted>
    RETURNING`` (SQLite 3.35+, PostgreSQL): the policy's back-off is a ``CASE`` over the stored
    count, so the check and the increment are one statement. On PostgreSQL the conflicting row
    is locked and the ``WHERE`` evaluated on its latest version, so concurrent reservations
    queue on that row (until their transaction commits: callers commit at once); SQLite runs
    one writer at a time. A counter past ``expires_at`` counts as empty.
    """

    async def get(self, key: str) -> FailureCount | None:
        f = t.login_failures
        row = await self._one(select(f).where(f.c.key == key))
        return FailureCount(row["count"], row["last_at"]) if row else None

    async def reserve(self, key: str, now: int, *, policy: BackoffPolicy, ttl: int) -> Reservation:
        f = t.login_failures
        steps = policy.steps()
        delay = case(
            (f.c.count < policy.free_attempts, 0),
            *((f.c.count == policy.free_attempts + i, d) for i, d in enumerate(steps[:-1])),
            else_=steps[-1],
        )
        upsert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            upsert(f)
            .values(key=key, count=1, last_at=now, expires_at=now + ttl)
            .on_conflict_do_update(
                index_elements=[f.c.key],
                set_={
                    "count": case((f.c.expires_at <= now, 1), else_=f.c.count + 1),
                    "last_at": now,
                    "expires_at": now + ttl,
                },
                where=or_(f.c.expires_at <= now, f.c.last_at + delay <= now),
            )
            .returning(f.c.count, f.c.last_at)
        )
        row = await self._one(stmt)
        if row is not None:
            return Reservation(True, FailureCount(row["count"], row["last_at"]))
        current = await self.get(key)
        return Reservation(False, current or FailureCount(0, now))

    async def release(self, key: str) -> None:
        f = t.login_failures
        await self._conn.execute(
            update(f).where(f.c.key == key, f.c.count > 0).values(count=f.c.count - 1)
        )

    async def clear(self, key: str) -> None:
        await self._conn.execute(delete(t.login_failures).where(t.login_failures.c.key == key))


class SqlConsentStore(_Store):
    async def granted_scopes(self, user_id: str, client_id: str, api: str) -> frozenset[str]:
        c = t.consents
        rows = await self._conn.execute(
            select(c.c.scope).where(
                c.c.user_id == user_id, c.c.client_id == client_id, c.c.api == api
            )
        )
        return frozenset(rows.scalars())

    async def grant(
        self, user_id: str, client_id: str, api: str, scopes: tuple[str, ...], now: int
    ) -> None:
        missing = set(scopes) - await self.granted_scopes(user_id, client_id, api)
        if missing:
            await self._conn.execute(
                insert(t.consents),
                [
                    {
                        "user_id": user_id,
                        "client_id": client_id,
                        "api": api,
                        "scope": s,
                        "granted_at": now,
                    }
                    for s in sorted(missing)
                ],
            )

    async def list_for_user(self, user_id: str) -> dict[str, dict[str, frozenset[str]]]:
        c = t.consents
        rows = await self._conn.execute(
            select(c.c.client_id, c.c.api, c.c.scope)
            .where(c.c.user_id == user_id)
            .order_by(c.c.client_id, c.c.api)
        )
        out: dict[str, dict[str, set[str]]] = {}
        for row in rows:
            out.setdefault(row.client_id, {}).setdefault(row.api, set()).add(row.scope)
        return {k: {a: frozenset(v) for a, v in apis.items()} for k, apis in out.items()}

    async def withdraw(self, user_id: str, client_id: str) -> int:
        c = t.consents
        result = await self._conn.execute(
            delete(c).where(c.c.user_id == user_id, c.c.client_id == client_id)
        )
        return int(result.rowcount)


class SqlSessionStore(_Store):
    async def create(self, session: Session) -> None:
        await self._conn.execute(
            insert(t.sessions).values(
                digest=session.digest,
                user_id=session.user_id,
                auth_time=session.auth_time,
                amr=_join(session.amr),
                created_at=session.auth_time,
                expires_at=session.expires_at,
            )
        )

    async def get(self, digest: str, now: int) -> Session | None:
        s = t.sessions
        row = await self._one(select(s).where(s.c.digest == digest, s.c.expires_at > now))
        if row is None:
            return None
        return Session(
            digest=row["digest"],
            user_id=row["user_id"],
            auth_time=row["auth_time"],
            expires_at=row["expires_at"],
            amr=_split(row["amr"]),
        )

    async def delete(self, digest: str) -> None:
        await self._conn.execute(delete(t.sessions).where(t.sessions.c.digest == digest))

    async def delete_for_user(self, user_id: str) -> int:
        result = await self._conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user_id))
        return int(result.rowcount)


class SqlInteractionStore(_Store):
    async def create(self, interaction: Interaction) -> None:
        await self._conn.execute(
            insert(t.interactions).values(
                id=interaction.id,
                browser_digest=interaction.browser_digest,
                request=_request_to_json(interaction.request),
                created_at=interaction.created_at,
                expires_at=interaction.expires_at,
            )
        )

    async def get(self, interaction_id: str, now: int) -> Interaction | None:
        i = t.interactions
        row = await self._one(select(i).where(i.c.id == interaction_id, i.c.expires_at > now))
        if row is None:
            return None
        return Interaction(
            id=row["id"],
            browser_digest=row["browser_digest"],
            request=_request_from_json(row["request"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    async def delete(self, interaction_id: str) -> bool:
        result = await self._conn.execute(
            delete(t.interactions).where(t.interactions.c.id == interaction_id)
        )
        return bool(result.rowcount)


def _request_to_json(request: AuthorizationRequest) -> str:
    return json.dumps(
        {name: getattr(request, name) for name in AuthorizationRequest.__slots__},
        separators=(",", ":"),
    )


def _request_from_json(value: str) -> AuthorizationRequest:
    data = json.loads(value)
    data["scopes"] = tuple(data["scopes"])
    data["prompt"] = tuple(data["prompt"])
    return AuthorizationRequest(**data)


class SqlStores:
    """All stores of one request on one connection, inside one transaction."""

    __slots__ = (
        "_conn",
        "access_tokens",
        "apis",
        "assertion_jtis",
        "clients",
        "codes",
        "consents",
        "grants",
        "interactions",
        "login_failures",
        "refresh_tokens",
        "sessions",
        "users",
    )

    def __init__(self, conn: AsyncConnection, ephemeral: Ephemeral | None = None) -> None:
        self._conn = conn
        self.apis = SqlApiStore(conn)
        self.clients = SqlClientStore(conn)
        self.users = SqlUserStore(conn)
        self.grants = SqlGrantStore(conn)
        self.refresh_tokens = SqlRefreshTokenStore(conn)
        self.consents = SqlConsentStore(conn)
        self.sessions = SqlSessionStore(conn)
        self.login_failures: SqlLoginFailureStore | RedisLoginFailureStore
        self.codes: SqlCodeStore | RedisCodeStore
        self.interactions: SqlInteractionStore | RedisInteractionStore
        self.assertion_jtis: SqlAssertionJtiStore | RedisAssertionJtiStore
        if ephemeral is None:
            self.codes = SqlCodeStore(conn)
            self.interactions = SqlInteractionStore(conn)
            self.assertion_jtis = SqlAssertionJtiStore(conn)
            self.access_tokens = SqlAccessTokenStore(conn)
            self.login_failures = SqlLoginFailureStore(conn)
        else:
            self.codes = ephemeral.codes
            self.interactions = ephemeral.interactions
            self.assertion_jtis = ephemeral.assertion_jtis
            self.access_tokens = SqlAccessTokenStore(conn, ephemeral.denylist)
            self.login_failures = ephemeral.login_failures

    async def commit(self) -> None:
        await self._conn.commit()
        await self._conn.begin()


class Ephemeral:
    """The Redis-backed stores for short-lived state, shared by every request."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.codes = RedisCodeStore(redis, prefix)
        self.interactions = RedisInteractionStore(redis, prefix)
        self.assertion_jtis = RedisAssertionJtiStore(redis, prefix)
        self.denylist = RedisDenyList(redis, prefix)
        self.login_failures = RedisLoginFailureStore(redis, prefix)


class Database:
    """The engine and the unit of work: ``async with db.transaction() as stores``.

    With ``ephemeral`` (Redis), codes, interactions, assertion jtis and the JWT deny-list live
    there; everything else in SQL.
    """

    def __init__(self, engine: AsyncEngine, ephemeral: Ephemeral | None = None) -> None:
        self.engine = engine
        self.ephemeral = ephemeral

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlStores]:
        async with self.engine.connect() as conn:
            await conn.begin()
            try:
                yield SqlStores(conn, self.ephemeral)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
