"""Signing keys and the server pepper, kept in the database.

These are read at start-up (and on key reload), not per request.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.core.clock import Clock
from tokensmith.core.keys import (
    KeyRing,
    SigningKey,
    decode_private_key,
    encode_private_key,
    generate_private_key,
    is_encrypted,
    public_jwk,
)
from tokensmith.storage.sqlalchemy import tables as t

_PEPPER = "pepper"
_KEYS_LOCK_ID = 0x6B657973  # "keys"


async def get_or_create_pepper(engine: AsyncEngine) -> bytes:
    """The generated server pepper; created once, shared by every process."""
    async with engine.begin() as conn:
        value = (
            await conn.execute(
                select(t.server_secrets.c.value).where(t.server_secrets.c.name == _PEPPER)
            )
        ).scalar()
        if value is None:
            value = secrets.token_hex(32)
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(t.server_secrets).values(name=_PEPPER, value=value))
            except IntegrityError:
                value = (
                    await conn.execute(
                        select(t.server_secrets.c.value).where(t.server_secrets.c.name == _PEPPER)
                    )
                ).scalar_one()
    return bytes.fromhex(value)


@asynccontextmanager
async def key_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds the key-generation lock until it ends."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEYS_LOCK_ID})
        yield conn


async def load_keys(
    source: AsyncEngine | AsyncConnection, *, kek: bytes | None
) -> list[SigningKey]:
    if isinstance(source, AsyncConnection):
        rows = (await source.execute(select(t.signing_keys))).mappings().all()
    else:
        async with source.connect() as conn:
            rows = (await conn.execute(select(t.signing_keys))).mappings().all()
    return [
        SigningKey(
            kid=row["kid"],
            alg=row["alg"],
            private_key=decode_private_key(row["private_key"], kid=row["kid"], kek=kek),
            public_jwk=json.loads(row["public_jwk"]),
            created_at=row["created_at"],
            activates_at=row["activates_at"],
            retired_at=row["retired_at"],
            expires_at=row["expires_at"],
        )
        for row in rows
    ]


async def ensure_keys(
    engine: AsyncEngine, *, algs: tuple[str, ...], kek: bytes | None, clock: Clock
) -> KeyRing:
    """Load the signing keys; generate one for each of ``algs`` that has none active.

    Processes that start together must not each make their own keys: the check and the
    generation run under a lock (a PostgreSQL advisory lock; SQLite's ``BEGIN IMMEDIATE``), and
    the keys are read again inside it. So is the clock: a process that read it before another
    one stored its keys (activating at that one's later second) would otherwise find them not
    yet active and make its own.
    """
    now = int(clock())
    ring = KeyRing(await load_keys(engine, kek=kek))
    if all(ring.has_active(alg, now) for alg in algs):
        return ring
    async with key_lock(engine) as conn:
        keys = await load_keys(conn, kek=kek)
        now = int(clock())
        ring = KeyRing(keys)
        for alg in algs:
            if not ring.has_active(alg, now):
                keys.append(await insert_key(conn, alg=alg, now=now, activates_at=now, kek=kek))
    # what the lock's transaction read and wrote (no other process writes keys while it is held)
    return KeyRing(keys)


async def kids_in_clear(engine: AsyncEngine) -> list[str]:
    """The ``kid`` of every stored private key that is not encrypted with a key-encryption key
    (``tokensmith doctor`` reports them when one is configured)."""
    k = t.signing_keys
    async with engine.connect() as conn:
        rows = (await conn.execute(select(k.c.kid, k.c.private_key))).all()
    return [row.kid for row in rows if not is_encrypted(row.private_key)]


async def add_key(
    engine: AsyncEngine, *, alg: str, now: int, activates_at: int, kek: bytes | None
) -> SigningKey:
    """Generate and store a new key for ``alg``, published now, signing from ``activates_at``."""
    async with engine.begin() as conn:
        return await insert_key(conn, alg=alg, now=now, activates_at=activates_at, kek=kek)


async def insert_key(
    conn: AsyncConnection, *, alg: str, now: int, activates_at: int, kek: bytes | None
) -> SigningKey:
    private = generate_private_key(alg)
    jwk = public_jwk(private, alg)
    key = SigningKey(
        kid=jwk["kid"],
        alg=alg,
        private_key=private,
        public_jwk=jwk,
        created_at=now,
        activates_at=activates_at,
    )
    await conn.execute(
        insert(t.signing_keys).values(
            kid=key.kid,
            alg=alg,
            private_key=encode_private_key(private, kid=key.kid, kek=kek),
            public_jwk=json.dumps(jwk),
            created_at=now,
            activates_at=activates_at,
        )
    )
    return key


async def retire_keys(
    engine: AsyncEngine, *, alg: str, except_kid: str, retire_at: int, expires_at: int
) -> int:
    """Stop signing with every other unretired key of ``alg`` from ``retire_at`` (when the new
    key activates); keep publishing them until ``expires_at`` (when every token they signed has
    expired)."""
    k = t.signing_keys
    async with engine.begin() as conn:
        result = await conn.execute(
            update(k)
            .where(k.c.alg == alg, k.c.kid != except_kid, k.c.retired_at.is_(None))
            .values(retired_at=retire_at, expires_at=expires_at)
        )
    return int(result.rowcount)


async def prune_keys(engine: AsyncEngine, *, now: int) -> int:
    """Delete retired keys whose tokens have all expired."""
    k = t.signing_keys
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(k).where(k.c.expires_at.is_not(None), k.c.expires_at <= now)
        )
    return int(result.rowcount)
