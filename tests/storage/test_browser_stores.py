"""Store contract: SSO sessions, login/consent interactions and consents behave the same on
every implementation (interactions in Redis too, when it is configured)."""

from __future__ import annotations

import time
from dataclasses import replace

from tokensmith.core.models import AuthorizationRequest, Interaction, Session
from tokensmith.storage.compose import Database

API = "https://api.test"


def session(digest: str, user_id: str = "u1", expires_at: int = 2_000_000_000) -> Session:
    return Session(
        digest=digest, user_id=user_id, auth_time=100, expires_at=expires_at, amr=("pwd", "otp")
    )


def interaction(interaction_id: str = "ix1") -> Interaction:
    now = int(time.time())  # Redis expires keys on the real clock
    return Interaction(
        id=interaction_id,
        browser_digest="browser",
        request=AuthorizationRequest(
            client_id="app",
            redirect_uri="https://app.test/cb",
            redirect_uri_sent=True,
            scopes=("openid", "docs:read"),
            state="st",
            code_challenge="challenge",
            audience=API,
            nonce="n",
            prompt=("login", "consent"),
            max_age=60,
            login_hint="alice",
            hint_subject="u1",
        ),
        created_at=now,
        expires_at=now + 600,
    )


# -- sessions ------------------------------------------------------------------------------


async def test_session_round_trips_until_it_expires(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.sessions.create(session("s1", expires_at=1000))
    async with sql_db.transaction() as s:
        assert await s.sessions.get("s1", 999) == session("s1", expires_at=1000)
        assert await s.sessions.get("s1", 1000) is None
        assert await s.sessions.get("nothing", 0) is None


async def test_session_delete(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.sessions.create(session("s1"))
        await s.sessions.delete("s1")
        await s.sessions.delete("s1")  # deleting twice is harmless
        assert await s.sessions.get("s1", 0) is None


async def test_delete_for_user_ends_every_session_of_that_user_only(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.sessions.create(session("a1"))
        await s.sessions.create(session("a2"))
        await s.sessions.create(session("b1", user_id="u2"))
        assert await s.sessions.delete_for_user("u1") == 2
        assert await s.sessions.delete_for_user("u1") == 0
        assert await s.sessions.get("a1", 0) is None
        assert await s.sessions.get("a2", 0) is None
        assert await s.sessions.get("b1", 0) is not None


# -- interactions --------------------------------------------------------------------------


async def test_interaction_round_trips_the_whole_request(db: Database) -> None:
    pending = interaction()
    async with db.transaction() as s:
        await s.interactions.create(pending)
    async with db.transaction() as s:
        assert await s.interactions.get("ix1", pending.created_at) == pending
        assert await s.interactions.get("nothing", pending.created_at) is None


async def test_interaction_is_gone_once_expired(db: Database) -> None:
    pending = interaction()
    async with db.transaction() as s:
        await s.interactions.create(pending)
        assert await s.interactions.get("ix1", pending.expires_at - 1) is not None
        assert await s.interactions.get("ix1", pending.expires_at) is None


async def test_interaction_deleted_once(db: Database) -> None:
    pending = interaction()
    async with db.transaction() as s:
        await s.interactions.create(pending)
        assert await s.interactions.delete("ix1") is True
        assert await s.interactions.delete("ix1") is False
        assert await s.interactions.get("ix1", pending.created_at) is None


# -- consents ------------------------------------------------------------------------------


async def test_interactions_of_a_user_are_deleted_with_them(db: Database) -> None:
    """Those the user passed the password step of (all that names them), wherever they live."""
    async with db.transaction() as s:
        for interaction_id in ("ix1", "ix2", "ix3", "ix4"):
            await s.interactions.create(interaction(interaction_id))
        assert await s.interactions.set_pending("ix1", "u1", 100, 0)
        assert await s.interactions.set_pending("ix2", "u1", 100, 0)
        assert await s.interactions.set_pending("ix3", "u2", 100, 0)
        await s.interactions.delete("ix2")  # gone already: not counted
    now = int(time.time())
    async with db.transaction() as s:
        assert await s.interactions.delete_for_user("u1") == 1
        assert await s.interactions.get("ix1", now) is None
        assert await s.interactions.get("ix3", now) is not None
        assert await s.interactions.get("ix4", now) is not None
        assert await s.interactions.delete_for_user("u1") == 0


async def test_consent_is_per_client_and_api(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.consents.grant("u1", "app", API, ("docs:read",), 100)
        await s.consents.grant("u1", "app", "", ("openid", "profile"), 100)
        await s.consents.grant("u1", "other", API, ("docs:write",), 100)
    async with sql_db.transaction() as s:
        assert await s.consents.granted_scopes("u1", "app", API) == {"docs:read"}
        assert await s.consents.granted_scopes("u1", "app", "") == {"openid", "profile"}
        assert await s.consents.granted_scopes("u1", "other", API) == {"docs:write"}
        assert await s.consents.granted_scopes("u1", "app", "https://x.test") == frozenset()
        assert await s.consents.granted_scopes("u2", "app", API) == frozenset()
        assert await s.consents.list_for_user("u1") == {
            "app": {API: frozenset({"docs:read"}), "": frozenset({"openid", "profile"})},
            "other": {API: frozenset({"docs:write"})},
        }
        assert await s.consents.list_for_user("u2") == {}


async def test_consent_granted_again_adds_only_the_new_scopes(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.consents.grant("u1", "app", API, ("docs:read",), 100)
        await s.consents.grant("u1", "app", API, ("docs:read", "docs:write"), 200)
        await s.consents.grant("u1", "app", API, (), 300)
        assert await s.consents.granted_scopes("u1", "app", API) == {"docs:read", "docs:write"}


async def test_consent_withdrawn_for_one_client_across_its_apis(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.consents.grant("u1", "app", API, ("docs:read", "docs:write"), 100)
        await s.consents.grant("u1", "app", "", ("openid",), 100)
        await s.consents.grant("u1", "other", API, ("docs:read",), 100)
        await s.consents.grant("u2", "app", API, ("docs:read",), 100)
        assert await s.consents.withdraw("u1", "app") == 3
        assert await s.consents.withdraw("u1", "app") == 0
        assert await s.consents.list_for_user("u1") == {"other": {API: frozenset({"docs:read"})}}
        assert await s.consents.granted_scopes("u2", "app", API) == {"docs:read"}


async def test_consent_withdrawn_for_one_client_and_one_api_or_some_scopes(
    sql_db: Database,
) -> None:
    other_api = "https://other.test"
    async with sql_db.transaction() as s:
        await s.consents.grant("u1", "app", API, ("docs:read", "docs:write"), 100)
        await s.consents.grant("u2", "app", API, ("docs:read",), 100)
        await s.consents.grant("u1", "app", "", ("openid",), 100)
        await s.consents.grant("u1", "app", other_api, ("docs:write", "docs:read"), 100)
        await s.consents.grant("u1", "other", API, ("docs:write",), 100)
        assert await s.consents.withdraw_for_client_api("app", API) == 3
        assert await s.consents.withdraw_for_client_api("app", API) == 0
        assert await s.consents.list_for_user("u1") == {
            "app": {"": frozenset({"openid"}), other_api: frozenset({"docs:read", "docs:write"})},
            "other": {API: frozenset({"docs:write"})},
        }
        assert await s.consents.list_for_user("u2") == {}
        # scopes: for every API of the client, the client's other scopes and other clients kept
        assert await s.consents.withdraw_for_client_scopes("app", ("docs:write", "Openid")) == 1
        assert await s.consents.list_for_user("u1") == {
            "app": {"": frozenset({"openid"}), other_api: frozenset({"docs:read"})},
            "other": {API: frozenset({"docs:write"})},
        }


async def test_sessions_listed_per_user_live_ones_only(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.sessions.create(replace(session("a2", expires_at=2000), auth_time=200))
        await s.sessions.create(session("a1", expires_at=2000))
        await s.sessions.create(replace(session("old", expires_at=500), auth_time=50))
        await s.sessions.create(session("b1", user_id="u2"))
    async with sql_db.transaction() as s:
        listed = await s.sessions.list_for_user("u1", 1000)
        assert [x.digest for x in listed] == ["a1", "a2"]
        assert listed[0] == session("a1", expires_at=2000)
        assert await s.sessions.list_for_user("nobody", 0) == []
