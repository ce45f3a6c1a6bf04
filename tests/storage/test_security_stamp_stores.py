"""Store contract: security stamps (``ports.SecurityStampStore``) on SQLite and PostgreSQL, and a
code keeps the stamp it was issued with wherever codes live. The races are run for real, each
transaction on its own connection: an event renewing the stamp and a code redemption holding it
are serialised, whichever comes first."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from sqlalchemy import event

from tokensmith.core.models import AccessTokenRecord, AuthorizationCode, Grant
from tokensmith.core.ports import StaleStamp
from tokensmith.storage.compose import Database

LET_IT_RUN = 0.2
"""How long the second transaction is given to run ahead (only to expose a missing lock: the
assertions hold whatever the timing when the lock is there)."""


def grant() -> Grant:
    at = int(time.time())
    return Grant(
        id="g1",
        client_id="app",
        user_id="u1",
        scopes=("docs:read",),
        audience="https://api.test",
        auth_time=at,
        created_at=at,
    )


async def test_a_stamp_starts_at_zero_and_every_renewal_changes_it(sql_db: Database) -> None:
    async with sql_db.transaction() as stores:
        assert await stores.security_stamps.current("u1") == 0  # no row yet
        assert await stores.security_stamps.hold("u1") == 0
        await stores.security_stamps.renew("u1")
        assert await stores.security_stamps.hold("u1") == 1
        await stores.security_stamps.renew("u2")  # a subject never held
        await stores.security_stamps.renew("u2")
        assert await stores.security_stamps.hold("u2") == 2
        assert await stores.security_stamps.hold("u1") == 1
        assert await stores.security_stamps.current("u2") == 2
    async with sql_db.transaction() as stores:
        assert await stores.security_stamps.current("u1") == 1
        assert await stores.security_stamps.current("nobody") == 0


def issued_code(at: int, security_stamp: int) -> AuthorizationCode:
    return AuthorizationCode(
        digest="c1",
        client_id="app",
        user_id="u1",
        redirect_uri="https://app.test/cb",
        redirect_uri_sent=True,
        scopes=("docs:read",),
        audience="https://api.test",
        code_challenge="challenge",
        nonce=None,
        auth_time=at,
        session_id="s1",
        grant_id="g1",
        expires_at=at + 60,
        security_stamp=security_stamp,
    )


async def test_a_code_keeps_its_stamp(db: Database) -> None:
    at = int(time.time())
    issued = issued_code(at, 7)
    async with db.transaction() as stores:
        await stores.codes.create(issued)
    async with db.transaction() as stores:
        consumed = await stores.codes.consume("c1", at)
    assert consumed is not None
    assert consumed.security_stamp == 7
    assert consumed == dataclasses.replace(issued, consumed_at=at)


async def _end_access(db: Database) -> int:
    async with db.transaction() as stores:
        await stores.security_stamps.renew("u1")
        return await stores.grants.revoke_for_user("u1", int(time.time()))


async def test_an_event_after_a_redemption_holding_the_stamp_revokes_its_grant(
    sql_db: Database,
) -> None:
    async with sql_db.transaction() as stores:
        await stores.security_stamps.renew("u1")  # the row exists: only the lock can serialise
    async with sql_db.transaction() as redemption:
        assert await redemption.security_stamps.hold("u1") == 1
        event = asyncio.create_task(_end_access(sql_db))
        await asyncio.sleep(LET_IT_RUN)
        await redemption.grants.create(grant())
    assert await event == 1  # it waited for the redemption, then revoked the grant made there
    async with sql_db.transaction() as stores:
        made = await stores.grants.get("g1")
    assert made is not None
    assert made.revoked_at is not None


async def _held(db: Database) -> int:
    async with db.transaction() as stores:
        return await stores.security_stamps.hold("u1")


async def test_a_redemption_during_an_event_reads_the_stamp_the_event_wrote(
    sql_db: Database,
) -> None:
    async with sql_db.transaction() as stores:
        await stores.security_stamps.renew("u1")
    async with sql_db.transaction() as event:
        await event.security_stamps.renew("u1")
        redemption = asyncio.create_task(_held(sql_db))
        await asyncio.sleep(LET_IT_RUN)
    assert await redemption == 2  # not the 1 committed while the event ran


async def test_a_code_consumed_holds_its_users_stamp_until_the_redemption_ends(
    db: Database,
) -> None:
    """On PostgreSQL with codes in SQL, a consumption inside a transaction that has begun
    (here: a read first) also locks the stamp of its user (``HeldStamps``): ``hold`` then sends
    nothing, and an event still waits for the redemption and revokes the grant made there. With
    codes in Redis, or on SQLite, ``hold`` reads (and locks) it itself: the same outcome."""
    at = int(time.time())
    async with db.transaction() as stores:
        await stores.security_stamps.renew("u1")  # the row exists: only the lock can serialise
        await stores.codes.create(issued_code(at, 1))
    sent: list[str] = []
    listen = lambda *a: sent.append(a[2])  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with db.transaction() as redemption:
            assert await redemption.grants.get("g0") is None  # the transaction has begun
            assert await redemption.codes.consume("c1", at) is not None
            before = len(sent)
            assert await redemption.security_stamps.hold("u1") == 1
            held_by_consume = db.ephemeral is None and db.engine.dialect.name == "postgresql"
            assert (len(sent) == before) == held_by_consume, sent
            ending = asyncio.create_task(_end_access(db))
            await asyncio.sleep(LET_IT_RUN)
            await redemption.grants.create(grant())
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
    assert await ending == 1  # it waited for the redemption, then revoked the grant made there
    async with db.transaction() as stores:
        made = await stores.grants.get("g1")
        assert made is not None
        assert made.revoked_at is not None
        # a renewal in the transaction itself: the stamp held before is forgotten
        assert await stores.security_stamps.hold("u1") == 2
        await stores.security_stamps.renew("u1")
        assert await stores.security_stamps.hold("u1") == 3


def access_record(jti: str, grant_id: str) -> AccessTokenRecord:
    at = int(time.time())
    return AccessTokenRecord(
        jti=jti,
        digest=None,
        grant_id=grant_id,
        client_id="app",
        subject="u1",
        scopes=("docs:read",),
        audience="https://api.test",
        issued_at=at,
        expires_at=at + 60,
    )


async def _issue(db: Database, grant_id: str, stamp: int) -> None:
    """A redemption's issuance as the first statement of its transaction (on PostgreSQL: the
    driver's statement, committed by itself, checking and locking the stamp in it)."""
    async with db.transaction() as stores:
        await stores.grants.issue(
            dataclasses.replace(grant(), id=grant_id),
            access_token=access_record(f"j-{grant_id}", grant_id),
            refresh_token=None,
            stamp=("u1", stamp),
        )


async def _issued(db: Database, grant_id: str) -> bool:
    async with db.transaction() as stores:
        made = await stores.grants.get(grant_id)
        token = await stores.access_tokens.get(f"j-{grant_id}")
        assert (made is None) == (token is None)  # all or nothing
        return made is not None


async def test_an_issuance_with_a_stamp_writes_only_while_it_is_the_users(sql_db: Database) -> None:
    """``GrantStore.issue(stamp=...)``, a code's redemption: nothing written, ``StaleStamp``,
    unless the user's stamp is the code's; a user with no stamp row yet gets one (stamp 0)."""
    await _issue(sql_db, "g1", 0)  # no row yet
    assert await _issued(sql_db, "g1")
    assert await _held(sql_db) == 0
    async with sql_db.transaction() as stores:
        await stores.security_stamps.renew("u1")
    try:
        await _issue(sql_db, "g2", 0)
        raise AssertionError("a stale stamp was accepted")
    except StaleStamp:
        pass
    assert not await _issued(sql_db, "g2")
    await _issue(sql_db, "g3", 1)
    assert await _issued(sql_db, "g3")
    # the stamp held already by the transaction (a consumption in a begun one, on PostgreSQL)
    async with sql_db.transaction() as stores:
        assert await stores.security_stamps.hold("u1") == 1
        try:
            await stores.grants.issue(
                dataclasses.replace(grant(), id="g4"),
                access_token=access_record("j-g4", "g4"),
                refresh_token=None,
                stamp=("u1", 0),
            )
            raise AssertionError("a stale stamp was accepted")
        except StaleStamp:
            pass
    assert not await _issued(sql_db, "g4")


async def test_an_issuance_during_an_event_reads_the_stamp_the_event_wrote(
    sql_db: Database,
) -> None:
    """An event renewing the stamp, not yet committed, while the issuance runs: the issuance
    waits for it (the stamp is read ``FOR SHARE``, in the issuance's own statement on
    PostgreSQL), then sees the new stamp and writes nothing."""
    async with sql_db.transaction() as stores:
        await stores.security_stamps.renew("u1")
    async with sql_db.transaction() as event_:
        await event_.security_stamps.renew("u1")
        issuance = asyncio.create_task(_issue(sql_db, "g1", 1))
        await asyncio.sleep(LET_IT_RUN)
    try:
        await issuance
        raise AssertionError("issued under the stamp the event replaced")
    except StaleStamp:
        pass
    assert not await _issued(sql_db, "g1")


async def test_an_event_after_an_issuance_revokes_its_grant(sql_db: Database) -> None:
    """The other order: an issuance holding the stamp makes the event's renewal wait; the
    event's revocation, after it, finds the grant."""
    async with sql_db.transaction() as stores:
        await stores.security_stamps.renew("u1")
    async with sql_db.transaction() as redemption:
        assert await redemption.grants.get("g0") is None  # the transaction has begun
        await redemption.grants.issue(
            grant(), access_token=access_record("j-g1", "g1"), refresh_token=None, stamp=("u1", 1)
        )
        ending = asyncio.create_task(_end_access(sql_db))
        await asyncio.sleep(LET_IT_RUN)
    assert await ending == 1
