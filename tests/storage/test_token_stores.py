"""Store contract: codes, grants, access and refresh tokens, assertion ``jti``s behave the same
on every implementation (SQLite, PostgreSQL, and PostgreSQL + Redis where the concern lives in
Redis). The races are run for real: 30 transactions at once, each on its own connection."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from tokensmith.core.models import AccessTokenRecord, AuthorizationCode, Grant, RefreshToken, User
from tokensmith.core.ports import Conflict
from tokensmith.storage.compose import Database

N = 30


def now() -> int:
    # Redis expires keys on the real clock: the stored values must not be past already.
    return int(time.time())


def code(digest: str = "c1", **kw: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "digest": digest,
        "client_id": "app",
        "user_id": "u1",
        "redirect_uri": "https://app.test/cb",
        "redirect_uri_sent": True,
        "scopes": ("openid", "docs:read"),
        "audience": "https://api.test",
        "code_challenge": "challenge",
        "nonce": "n-1",
        "auth_time": now() - 5,
        "session_id": "s1",
        "grant_id": "g1",
        "expires_at": now() + 60,
    }
    values.update(kw)
    return AuthorizationCode(**values)  # type: ignore[arg-type]


def grant(grant_id: str, **kw: object) -> Grant:
    values: dict[str, object] = {
        "id": grant_id,
        "client_id": "app",
        "user_id": "u1",
        "scopes": ("openid",),
        "audience": "https://api.test",
        "auth_time": 100,
        "created_at": 100,
        "session_id": "s1",
    }
    values.update(kw)
    return Grant(**values)  # type: ignore[arg-type]


def user(user_id: str) -> User:
    return User(
        id=user_id,
        username=user_id,
        email=None,
        email_verified=False,
        name=None,
        password_hash=None,
        disabled=False,
        created_at=100,
        updated_at=100,
    )


def refresh(digest: str = "r1") -> RefreshToken:
    return RefreshToken(
        digest=digest,
        grant_id="g1",
        client_id="app",
        issued_at=now(),
        expires_at=now() + 600,
        absolute_expires_at=now() + 6000,
    )


def access(jti: str = "j1", digest: str | None = "d1") -> AccessTokenRecord:
    return AccessTokenRecord(
        jti=jti,
        client_id="app",
        subject="u1",
        scopes=("docs:read",),
        audience="https://api.test",
        issued_at=now(),
        expires_at=now() + 300,
        grant_id="g1",
        digest=digest,
    )


# -- authorization codes -------------------------------------------------------------------


async def test_code_is_consumed_once_and_remembered_for_replay_detection(db: Database) -> None:
    """RFC 6749 §4.1.2 / §10.5: a code is used once; a replay finds the grant to revoke."""
    issued = code()
    async with db.transaction() as s:
        await s.codes.create(issued)
    async with db.transaction() as s:
        consumed = await s.codes.consume("c1", now())
        assert consumed is not None
        assert consumed.consumed_at is not None
        assert consumed == dataclasses.replace(issued, consumed_at=consumed.consumed_at)
    async with db.transaction() as s:
        assert await s.codes.consume("c1", now()) is None
        replayed = await s.codes.get("c1")
        assert replayed is not None
        assert replayed.grant_id == "g1"
        assert replayed.consumed_at is not None


async def test_unknown_code_is_neither_consumed_nor_found(db: Database) -> None:
    async with db.transaction() as s:
        assert await s.codes.consume("nothing", now()) is None
        assert await s.codes.get("nothing") is None


async def test_parallel_redemptions_consume_a_code_exactly_once(db: Database) -> None:
    async with db.transaction() as s:
        await s.codes.create(code())

    async def consume() -> bool:
        async with db.transaction() as s:
            return await s.codes.consume("c1", now()) is not None

    assert sum(await asyncio.gather(*(consume() for _ in range(N)))) == 1


async def test_a_code_consumed_first_stays_consumed_if_the_transaction_fails(
    db: Database,
) -> None:
    """On PostgreSQL (codes in SQL) a consumption that is the first statement of its
    transaction is sent alone and commits by itself: the code stays burnt whatever follows.
    Where it is part of the transaction (SQLite, or after another statement) a failure rolls it
    back; codes in Redis are consumed at once anyway."""

    class Failed(Exception):
        pass

    async with db.transaction() as s:
        await s.codes.create(code())
    try:
        async with db.transaction() as s:
            assert await s.codes.consume("c1", now()) is not None
            raise Failed
    except Failed:
        pass
    alone = db.engine.dialect.name == "postgresql"  # also true with codes in Redis
    async with db.transaction() as s:
        assert (await s.codes.consume("c1", now()) is None) == alone
    # a consumption after another statement is part of the transaction
    async with db.transaction() as s:
        await s.codes.create(code("c2"))
    try:
        async with db.transaction() as s:
            assert await s.grants.get("g0") is None
            assert await s.codes.consume("c2", now()) is not None
            raise Failed
    except Failed:
        pass
    async with db.transaction() as s:
        assert (await s.codes.consume("c2", now()) is None) == (db.ephemeral is not None)


# -- grants --------------------------------------------------------------------------------


async def test_grant_round_trips_and_a_duplicate_is_conflict(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("g1"))
        with pytest.raises(Conflict):
            await s.grants.create(grant("g1", client_id="other"))
        assert await s.grants.get("g1") == grant("g1")
        assert await s.grants.get("nothing") is None


async def test_live_grant_needs_an_enabled_user_and_no_revocation(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user("u1"))
        await s.users.create(user("u2"))
        await s.grants.create(grant("live"))
        await s.grants.create(grant("revoked"))
        await s.grants.revoke("revoked", 200)
        await s.grants.create(grant("disabled", user_id="u2"))
        await s.users.set_disabled("u2", True, 200)
        await s.grants.create(grant("no user", user_id="gone"))
        assert await s.grants.get_live("live") == grant("live")
        for grant_id in ("revoked", "disabled", "no user", "nothing"):
            assert await s.grants.get_live(grant_id) is None, grant_id


async def test_parallel_creations_of_one_grant_store_exactly_one(sql_db: Database) -> None:
    """A code's grant stored by its redemption and, revoked, by a replay at the same moment
    (codes in Redis): one insert wins, the other is a Conflict, and the transaction goes on."""

    async def create(index: int) -> bool:
        async with sql_db.transaction() as s:
            try:
                await s.grants.create(grant("g1", revoked_at=index))
            except Conflict:
                await s.grants.create(grant(f"after-{index}"))  # the transaction still works
                return False
            return True

    assert sum(await asyncio.gather(*(create(i) for i in range(N)))) == 1
    async with sql_db.transaction() as s:
        winner = await s.grants.get("g1")
        assert winner is not None
        for index in range(N):
            went_on = await s.grants.get(f"after-{index}") is not None
            assert went_on == (index != winner.revoked_at), index


def count_statements(db: Database, control: list[str] | None = None) -> list[str]:
    """The SQL statements sent on ``db``'s engine from now on (transaction control aside):
    through SQLAlchemy, and on PostgreSQL also those sent to the driver itself
    (``RetryingConnection.driver_fetch``), which asyncpg's query loggers see. ``control``:
    where to put the transaction control that asyncpg sends (PostgreSQL)."""
    sent: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _sent(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
            sent.append(statement)

    def _logged(record: Any) -> None:
        if not record.query.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            sent.append(record.query)
        elif control is not None:
            control.append(record.query)

    if db.engine.dialect.name == "postgresql":

        @event.listens_for(db.engine.sync_engine.pool, "checkout")
        def _checkout(dbapi_connection: Any, *_: object) -> None:
            dbapi_connection.driver_connection.add_query_logger(_logged)  # a set: added once

    return sent


async def test_issue_writes_the_grant_and_its_tokens_in_one_statement_on_postgresql(
    sql_db: Database,
) -> None:
    """A code's redemption writes its grant, access-token record and refresh token with one
    ``GrantStore.issue``: one statement (data-modifying CTEs) on PostgreSQL, three on SQLite."""
    sent = count_statements(sql_db)
    # each record made once: they carry the clock's second, which may turn between two calls
    g1, j1, r1 = grant("g1"), access(), refresh()
    async with sql_db.transaction() as s:
        await s.grants.issue(g1, access_token=j1, refresh_token=r1)
    postgres = sql_db.engine.dialect.name == "postgresql"
    assert len(sent) == (1 if postgres else 3), sent
    async with sql_db.transaction() as s:
        assert await s.grants.get("g1") == g1
        assert await s.access_tokens.get("j1") == j1
        assert await s.refresh_tokens.get("r1") == r1
    # a refresh: the access token and the refresh token, no grant; and an access token alone
    sent.clear()
    j2, r2, j3 = access("j2", "d2"), refresh("r2"), access("j3", None)
    async with sql_db.transaction() as s:
        await s.grants.issue(None, access_token=j2, refresh_token=r2)
        await s.grants.issue(None, access_token=j3, refresh_token=None)
    assert len(sent) == (2 if postgres else 3), sent
    async with sql_db.transaction() as s:
        assert await s.access_tokens.get("j2") == j2
        assert await s.access_tokens.get("j3") == j3
        assert await s.refresh_tokens.get("r2") == r2


async def test_an_issuance_that_is_the_last_write_commits_by_itself_on_postgresql(
    sql_db: Database,
) -> None:
    """``last``: an opaque client-credentials token, its request's only write. On PostgreSQL,
    as the first statement of its transaction, it is sent alone (no ``BEGIN``/``COMMIT``) and
    commits by itself: it stays even if the transaction fails afterwards. After another
    statement, or on SQLite, it is part of the transaction and rolled back with it."""

    class Failed(Exception):
        pass

    postgres = sql_db.engine.dialect.name == "postgresql"
    control: list[str] = []
    sent = count_statements(sql_db, control)
    j1, j2 = access("j1", "d1"), access("j2", "d2")
    try:
        async with sql_db.transaction() as s:
            await s.grants.issue(None, access_token=j1, refresh_token=None, last=True)
            raise Failed
    except Failed:
        pass
    assert len(sent) == 1, sent
    assert control == [], control  # PostgreSQL: no BEGIN, COMMIT or ROLLBACK (SQLite: none seen)
    try:
        async with sql_db.transaction() as s:
            assert await s.grants.get("g0") is None
            await s.grants.issue(None, access_token=j2, refresh_token=None, last=True)
            raise Failed
    except Failed:
        pass
    async with sql_db.transaction() as s:
        assert (await s.access_tokens.get("j1") == j1) == postgres
        assert await s.access_tokens.get("j2") is None


async def test_issue_keeps_a_grant_stored_already_and_its_tokens_are_born_revoked(
    sql_db: Database,
) -> None:
    """A replay of the code (codes in Redis) stored the grant revoked while the redemption
    ran: the redemption's insert of the grant does nothing, and its tokens belong to the
    revoked grant."""
    async with sql_db.transaction() as s:
        await s.users.create(user("u1"))
        await s.grants.create(grant("g1", revoked_at=150))
    j1, r1 = access(), refresh()  # made once: they carry the clock's second
    async with sql_db.transaction() as s:
        await s.grants.issue(grant("g1"), access_token=j1, refresh_token=r1)
    async with sql_db.transaction() as s:
        assert await s.grants.get("g1") == grant("g1", revoked_at=150)
        assert await s.grants.get_live("g1") is None
        assert await s.access_tokens.get("j1") == j1
        assert await s.refresh_tokens.get("r1") == r1


async def test_issue_leaves_nothing_half_written(sql_db: Database) -> None:
    """One of the rows cannot be written (its refresh token's digest exists): none is."""
    async with sql_db.transaction() as s:
        await s.refresh_tokens.create(refresh())
    with pytest.raises(IntegrityError):
        async with sql_db.transaction() as s:
            await s.grants.issue(grant("g1"), access_token=access(), refresh_token=refresh())
    async with sql_db.transaction() as s:
        assert await s.grants.get("g1") is None
        assert await s.access_tokens.get("j1") is None
    # a redemption's issuance (with the stamp: on PostgreSQL the driver's own statement): the
    # same, and the same error as SQLAlchemy's (a database error the server answers with 503)
    async with sql_db.transaction() as s:
        await s.security_stamps.renew("u1")  # the stamp row exists: the one-statement path
    with pytest.raises(IntegrityError):
        async with sql_db.transaction() as s:
            await s.grants.issue(
                grant("g1"), access_token=access(), refresh_token=refresh(), stamp=("u1", 1)
            )
    async with sql_db.transaction() as s:
        assert await s.grants.get("g1") is None
        assert await s.access_tokens.get("j1") is None


async def test_grant_revoked_once(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("g1"))
        assert await s.grants.revoke("g1", 200) is True
        assert await s.grants.revoke("g1", 300) is False
        revoked = await s.grants.get("g1")
        assert revoked is not None
        assert revoked.revoked_at == 200
        assert await s.grants.revoke("nothing", 200) is False


async def test_revoke_for_user_revokes_only_that_users_live_grants(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("a"))
        await s.grants.create(grant("b", client_id="other"))
        await s.grants.create(grant("old", revoked_at=150))
        await s.grants.create(grant("bob", user_id="u2"))
        assert await s.grants.revoke_for_user("u1", 200) == 2
        assert await s.grants.revoke_for_user("u1", 300) == 0
        states = {g: (await s.grants.get(g)).revoked_at for g in ("a", "b", "old", "bob")}  # type: ignore[union-attr]
    assert states == {"a": 200, "b": 200, "old": 150, "bob": None}


async def test_revoke_for_client_revokes_one_users_grants_to_one_client(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("a"))
        await s.grants.create(grant("a2"))
        await s.grants.create(grant("b", client_id="other"))
        await s.grants.create(grant("bob", user_id="u2"))
        assert await s.grants.revoke_for_client("u1", "app", 200) == 2
        assert await s.grants.revoke_for_client("u1", "app", 300) == 0
        states = {g: (await s.grants.get(g)).revoked_at for g in ("a", "a2", "b", "bob")}  # type: ignore[union-attr]
    assert states == {"a": 200, "a2": 200, "b": None, "bob": None}


async def test_revoke_for_session_spares_offline_access(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("online"))
        await s.grants.create(grant("offline", scopes=("openid", "offline_access")))
        await s.grants.create(grant("elsewhere", session_id="s2"))
        await s.grants.create(grant("none", session_id=None))
        assert await s.grants.revoke_for_session("s1", 200) == 1
        assert await s.grants.revoke_for_session("s1", 300) == 0
        ids = ("online", "offline", "elsewhere", "none")
        states = {g: (await s.grants.get(g)).revoked_at for g in ids}  # type: ignore[union-attr]
    assert states == {"online": 200, "offline": None, "elsewhere": None, "none": None}


async def test_revoke_for_client_audience_revokes_one_clients_grants_for_one_api(
    sql_db: Database,
) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("a"))
        await s.grants.create(grant("bob", user_id="u2"))
        await s.grants.create(grant("kept", audience="https://other.test"))
        await s.grants.create(grant("peer", client_id="other"))
        await s.grants.create(grant("old", revoked_at=150))
        assert await s.grants.revoke_for_client_audience("app", "https://api.test", 200) == 2
        assert await s.grants.revoke_for_client_audience("app", "https://api.test", 300) == 0
        ids = ("a", "bob", "kept", "peer", "old")
        states = {g: (await s.grants.get(g)).revoked_at for g in ids}  # type: ignore[union-attr]
    assert states == {"a": 200, "bob": 200, "kept": None, "peer": None, "old": 150}


#: Scopes to revoke, each of which a ``LIKE`` would match in another scope: exact matches only.
TAKEN = ("docs:write", "a_b", "50%")


async def test_revoke_for_client_scopes_matches_whole_scopes_exactly(sql_db: Database) -> None:
    held = {
        "last": ("openid", "docs:write"),
        "first": ("docs:write", "docs:read"),
        "underscore": ("a_b",),
        "percent": ("x", "50%", "y"),
        "kept": ("docs:read",),
        "longer": ("docs:writer",),
        "case": ("Docs:Write",),  # SQLite's LIKE ignores case; scopes do not
        "wildcard_": ("axb",),  # "a_b" as a LIKE pattern
        "wildcard%": ("50percent",),  # "50%" as a LIKE pattern
    }
    async with sql_db.transaction() as s:
        for grant_id, scopes in held.items():
            await s.grants.create(grant(grant_id, scopes=scopes))
        await s.grants.create(grant("peer", client_id="other", scopes=("docs:write",)))
        await s.grants.create(grant("old", scopes=("docs:write",), revoked_at=150))
        assert await s.grants.revoke_for_client_scopes("app", TAKEN, 200) == 4
        assert await s.grants.revoke_for_client_scopes("app", TAKEN, 300) == 0
        assert await s.grants.revoke_for_client_scopes("app", (), 300) == 0
        ids = (*held, "peer", "old")
        states = {g: (await s.grants.get(g)).revoked_at for g in ids}  # type: ignore[union-attr]
    revoked = {"last", "first", "underscore", "percent"}
    assert states == {
        **{g: 200 if g in revoked else None for g in held},
        "peer": None,
        "old": 150,
    }


# -- access tokens and the deny-list -------------------------------------------------------


async def test_access_token_record_found_by_jti_and_digest_and_revoked_once(db: Database) -> None:
    record = access()
    async with db.transaction() as s:
        await s.access_tokens.record(record)
        await s.access_tokens.record(access("j2", None))
    async with db.transaction() as s:
        assert await s.access_tokens.get("j1") == record
        assert await s.access_tokens.get_by_digest("d1") == record
        assert await s.access_tokens.get("nothing") is None
        assert await s.access_tokens.get_by_digest("nothing") is None
        assert await s.access_tokens.revoke("j1", now()) is True
        assert await s.access_tokens.revoke("j1", now()) is False
        assert await s.access_tokens.revoke("nothing", now()) is False
        revoked = await s.access_tokens.get("j1")
        assert revoked is not None
        assert revoked.revoked_at is not None


async def test_access_tokens_revoked_for_one_client_and_one_api(sql_db: Database) -> None:
    records = {
        "mine": access("mine", "d-mine"),
        "no-grant": dataclasses.replace(access("no-grant", "d-ng"), grant_id=None),
        "other-api": dataclasses.replace(access("other-api", None), audience="https://o.test"),
        "peer": dataclasses.replace(access("peer", "d-peer"), client_id="other"),
        "expired": dataclasses.replace(access("expired", "d-x"), expires_at=now() - 1),
    }
    async with sql_db.transaction() as s:
        for record in records.values():
            await s.access_tokens.record(record)
        at = now()
        assert await s.access_tokens.revoke_for_client_audience("app", "https://api.test", at) == 2
        assert await s.access_tokens.revoke_for_client_audience("app", "https://api.test", at) == 0
        states = {j: (await s.access_tokens.get(j)).revoked_at for j in records}  # type: ignore[union-attr]
    assert states == {"mine": at, "no-grant": at, "other-api": None, "peer": None, "expired": None}


async def test_access_tokens_revoked_for_one_client_by_exact_scope(sql_db: Database) -> None:
    held = {
        "last": ("openid", "docs:write"),
        "underscore": ("a_b",),
        "percent": ("50%",),
        "kept": ("docs:read",),
        "case": ("Docs:Write",),
        "wildcard_": ("axb",),
        "wildcard%": ("50percent",),
    }
    async with sql_db.transaction() as s:
        for jti, scopes in held.items():
            await s.access_tokens.record(dataclasses.replace(access(jti, None), scopes=scopes))
        peer = dataclasses.replace(access("peer", None), client_id="other", scopes=("docs:write",))
        await s.access_tokens.record(peer)
        at = now()
        assert await s.access_tokens.revoke_for_client_scopes("app", TAKEN, at) == 3
        assert await s.access_tokens.revoke_for_client_scopes("app", TAKEN, at) == 0
        states = {j: (await s.access_tokens.get(j)).revoked_at for j in (*held, "peer")}  # type: ignore[union-attr]
    revoked = {"last", "underscore", "percent"}
    assert states == {**{j: at if j in revoked else None for j in held}, "peer": None}


async def test_denied_jti_stays_denied_and_denying_twice_is_harmless(db: Database) -> None:
    async with db.transaction() as s:
        assert await s.access_tokens.is_denied("j1") is False
        await s.access_tokens.deny_jti("j1", now() + 300)
        await s.access_tokens.deny_jti("j1", now() + 300)
    async with db.transaction() as s:
        assert await s.access_tokens.is_denied("j1") is True
        assert await s.access_tokens.is_denied("j2") is False


# -- refresh tokens ------------------------------------------------------------------------


async def test_refresh_token_rotated_once(sql_db: Database) -> None:
    """RFC 9700 §4.14.2: a rotated refresh token is not rotated again (reuse detection)."""
    r1 = refresh()  # made once: it carries the clock's second
    async with sql_db.transaction() as s:
        await s.refresh_tokens.create(r1)
        assert await s.refresh_tokens.get("r1") == r1
        assert await s.refresh_tokens.get("nothing") is None
        # another client's rotation changes nothing (RFC 9700 §4.14.2: bound to its client)
        assert await s.refresh_tokens.rotate("r1", 400, client_id="other") is None
        assert await s.refresh_tokens.get("r1") == r1
        rotated = await s.refresh_tokens.rotate("r1", 500, client_id="app")
        assert rotated is not None
        assert rotated.rotated_at == 500
        assert await s.refresh_tokens.rotate("r1", 600, client_id="app") is None
        assert await s.refresh_tokens.rotate("nothing", 600, client_id="app") is None
        stored = await s.refresh_tokens.get("r1")
        assert stored is not None
        assert stored.rotated_at == 500


async def test_parallel_refreshes_rotate_a_token_exactly_once(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.refresh_tokens.create(refresh())

    async def rotate() -> bool:
        async with sql_db.transaction() as s:
            return await s.refresh_tokens.rotate("r1", now(), client_id="app") is not None

    assert sum(await asyncio.gather(*(rotate() for _ in range(N)))) == 1


async def test_rotation_with_its_live_grant_in_one_statement_on_postgresql(
    sql_db: Database,
) -> None:
    """A refresh rotates its token and reads the token's live grant (``get_live``) in one
    statement on PostgreSQL; the rotation's rules are ``rotate``'s."""
    async with sql_db.transaction() as s:
        await s.users.create(user("u1"))
        await s.users.create(user("u2"))
        await s.grants.create(grant("g1"))
        await s.grants.create(grant("g2"))
        await s.grants.create(grant("g3", user_id="u2"))
        made = {}  # made once: each carries the clock's second
        for digest, grant_id in (("r1", "g1"), ("r2", "g2"), ("r3", "g3")):
            made[digest] = dataclasses.replace(refresh(digest), grant_id=grant_id)
            await s.refresh_tokens.create(made[digest])
        await s.grants.revoke("g2", 200)
        await s.users.set_disabled("u2", True, 200)
    sent = count_statements(sql_db)
    async with sql_db.transaction() as s:
        assert await s.refresh_tokens.rotate_with_grant("r1", 400, client_id="other") is None
        rotated = await s.refresh_tokens.rotate_with_grant("r1", 500, client_id="app")
        assert rotated is not None
        token, live = rotated
        assert token == dataclasses.replace(made["r1"], rotated_at=500)
        assert live == grant("g1")
        assert await s.refresh_tokens.rotate_with_grant("r1", 600, client_id="app") is None
        assert await s.refresh_tokens.rotate_with_grant("nothing", 600, client_id="app") is None
        # rotated all the same, but the grant is revoked / its user disabled
        revoked = await s.refresh_tokens.rotate_with_grant("r2", 500, client_id="app")
        disabled = await s.refresh_tokens.rotate_with_grant("r3", 500, client_id="app")
        assert revoked is not None
        assert revoked[1] is None
        assert disabled is not None
        assert disabled[1] is None
    postgres = sql_db.engine.dialect.name == "postgresql"
    # SQLite: the rotation, then the grant's read when something rotated
    assert len(sent) == (6 if postgres else 9), sent
    async with sql_db.transaction() as s:
        for digest in ("r2", "r3"):
            stored = await s.refresh_tokens.get(digest)
            assert stored is not None
            assert stored.rotated_at == 500


async def test_parallel_rotations_with_the_grant_rotate_a_token_exactly_once(
    sql_db: Database,
) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user("u1"))
        await s.grants.create(grant("g1"))
        await s.refresh_tokens.create(refresh())

    async def rotate() -> bool:
        async with sql_db.transaction() as s:
            rotated = await s.refresh_tokens.rotate_with_grant("r1", now(), client_id="app")
            return rotated is not None and rotated[1] == grant("g1")

    assert sum(await asyncio.gather(*(rotate() for _ in range(N)))) == 1


async def test_rotation_with_its_grant_sees_a_revocation_committed_while_it_waited(
    sql_db: Database,
) -> None:
    """The rotation waits for another refresh of the same token that then rolls back (an
    ``invalid_scope``): a revocation of the grant committed meanwhile must be seen, as the two
    statements (``rotate`` then ``get_live``) see it; the statement's snapshot predates it."""
    if sql_db.engine.dialect.name != "postgresql":
        pytest.skip("one writer at a time on SQLite: nothing waits inside a statement")
    async with sql_db.transaction() as s:
        await s.users.create(user("u1"))
        await s.grants.create(grant("g1"))
        await s.refresh_tokens.create(refresh())
    first = sql_db.transaction()
    s1 = await first.__aenter__()
    assert await s1.refresh_tokens.rotate("r1", now(), client_id="app") is not None
    async with sql_db.transaction() as s2:
        waiting = asyncio.ensure_future(
            s2.refresh_tokens.rotate_with_grant("r1", now(), client_id="app")
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        async with sql_db.transaction() as s3:
            assert await s3.grants.revoke("g1", now())
        await first.__aexit__(RuntimeError, RuntimeError("invalid_scope"), None)  # rolled back
        rotated = await asyncio.wait_for(waiting, 5)
        assert rotated is not None
        assert rotated[1] is None  # the grant is revoked: no tokens for it


# -- client-assertion jtis -----------------------------------------------------------------


async def test_assertion_jti_used_once_per_client(db: Database) -> None:
    """RFC 7523 §3 (7): a client assertion's ``jti`` is accepted once."""
    async with db.transaction() as s:
        assert await s.assertion_jtis.use("app", "jti-1", now() + 60) is True
        assert await s.assertion_jtis.use("app", "jti-1", now() + 60) is False
        assert await s.assertion_jtis.use("other", "jti-1", now() + 60) is True
    async with db.transaction() as s:
        assert await s.assertion_jtis.use("app", "jti-1", now() + 60) is False


async def test_parallel_uses_of_one_assertion_jti_admit_exactly_one(db: Database) -> None:
    async def use() -> bool:
        async with db.transaction() as s:
            return await s.assertion_jtis.use("app", "jti-race", now() + 60)

    assert sum(await asyncio.gather(*(use() for _ in range(N)))) == 1


# -- the unit of work ----------------------------------------------------------------------


async def test_commit_keeps_what_was_written_when_the_request_then_fails(sql_db: Database) -> None:
    """``Stores.commit``: a failing request still persists a security action (a revocation)."""

    async def failing_request() -> None:
        async with sql_db.transaction() as s:
            await s.grants.create(grant("kept"))
            await s.commit()
            await s.grants.create(grant("lost"))
            raise RuntimeError("the request fails")

    with pytest.raises(RuntimeError):
        await failing_request()
    async with sql_db.transaction() as s:
        assert await s.grants.get("kept") is not None
        assert await s.grants.get("lost") is None


async def test_grants_listed_per_user_oldest_first_revoked_ones_too(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.grants.create(grant("g2", created_at=200))
        await s.grants.create(grant("g1", created_at=100))
        await s.grants.create(grant("g3", user_id="u2"))
        await s.grants.revoke("g1", 300)
    async with sql_db.transaction() as s:
        listed = await s.grants.list_for_user("u1")
        assert listed == [grant("g1", revoked_at=300), grant("g2", created_at=200)]
        assert await s.grants.list_for_user("nobody") == []
