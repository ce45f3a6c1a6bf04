"""Registered OAuth clients (RFC 6749 §2), and their row mapping (shared with the admin
service)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import RowMapping, delete, or_, select, update

from tokensmith.core.models import AuthMethod, Client, ClientOrigin, ClientType, TokenFormat
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.base import SqlStore, join_words, split_words


class SqlClientStore(SqlStore):
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

    async def set_registration_token(self, client_id: str, digest: str, now: int) -> bool:
        result = await self._conn.execute(
            update(t.clients)
            .where(t.clients.c.client_id == client_id)
            .values(registration_token_digest=digest, updated_at=now)
        )
        return bool(result.rowcount)

    async def touch(self, client_id: str, now: int, *, older_than: int) -> bool:
        c = t.clients.c
        result = await self._conn.execute(
            update(t.clients)
            .where(
                c.client_id == client_id,
                or_(c.last_used_at.is_(None), c.last_used_at < older_than),
            )
            .values(last_used_at=now)
        )
        return bool(result.rowcount)

    async def update(self, client: Client, now: int) -> bool:
        values = client_to_row(client)
        for kept in (
            "client_id",
            "secret_digest",
            "created_at",
            "registration_token_digest",
            "last_used_at",
        ):
            del values[kept]
        values["updated_at"] = now
        result = await self._conn.execute(
            update(t.clients).where(t.clients.c.client_id == client.client_id).values(**values)
        )
        return bool(result.rowcount)


def client_to_row(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "client_type": client.client_type,
        "secret_digest": client.secret_digest,
        "redirect_uris": join_words(client.redirect_uris),
        "grant_types": join_words(client.grant_types),
        "scopes": join_words(client.scopes),
        "apis": join_words(client.apis),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "first_party": client.first_party,
        "native": client.native,
        "can_introspect": client.can_introspect,
        "mfa_required": client.mfa_required,
        "access_token_format": client.access_token_format,
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_idle_ttl": client.refresh_token_idle_ttl,
        "refresh_token_absolute_ttl": client.refresh_token_absolute_ttl,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": join_words(client.post_logout_redirect_uris),
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "created_at": client.created_at,
        "updated_at": client.created_at,
        "origin": client.origin,
        "registration_token_digest": client.registration_token_digest,
        "last_used_at": client.last_used_at,
    }


def client_from_row(row: RowMapping) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        client_type=cast(ClientType, row["client_type"]),
        secret_digest=row["secret_digest"],
        redirect_uris=split_words(row["redirect_uris"]),
        grant_types=split_words(row["grant_types"]),
        scopes=split_words(row["scopes"]),
        apis=split_words(row["apis"]),
        token_endpoint_auth_method=cast(AuthMethod, row["token_endpoint_auth_method"]),
        first_party=bool(row["first_party"]),
        native=bool(row["native"]),
        can_introspect=bool(row["can_introspect"]),
        mfa_required=bool(row["mfa_required"]),
        access_token_format=cast(TokenFormat, row["access_token_format"]),
        access_token_ttl=row["access_token_ttl"],
        refresh_token_idle_ttl=row["refresh_token_idle_ttl"],
        refresh_token_absolute_ttl=row["refresh_token_absolute_ttl"],
        id_token_signed_response_alg=row["id_token_signed_response_alg"],
        post_logout_redirect_uris=split_words(row["post_logout_redirect_uris"]),
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        created_at=row["created_at"],
        origin=cast(ClientOrigin, row["origin"]),
        registration_token_digest=row["registration_token_digest"],
        last_used_at=row["last_used_at"],
    )
