"""The contract of ``AccountTokenStore`` (``core.self_service``'s links) on SQLite and
PostgreSQL: a link is used once, only for its purpose, only before it expires, and of concurrent
uses exactly one wins."""

from __future__ import annotations

import asyncio

from tokensmith.core.models import AccountToken
from tokensmith.storage.compose import Database

NOW = 1_000_000


def link(
    digest: str = "d1", *, purpose: str = "reset_password", user_id: str = "u1"
) -> AccountToken:
    return AccountToken(
        digest=digest,
        purpose=purpose,
        email="alice@example.com",
        user_id=user_id,
        created_at=NOW,
        expires_at=NOW + 600,
        data={"name": "Alice", "password_hash": "$argon2id$x"},
    )


async def test_a_link_round_trips_and_is_used_once(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(link())
    async with sql_db.transaction() as s:
        seen = await s.account_tokens.get("d1", "reset_password", NOW)
        assert seen == link()
        used = await s.account_tokens.consume("d1", "reset_password", NOW + 1)
        assert used is not None
        assert used.used_at == NOW + 1
        assert used.data == {"name": "Alice", "password_hash": "$argon2id$x"}
    async with sql_db.transaction() as s:
        assert await s.account_tokens.consume("d1", "reset_password", NOW + 2) is None
        assert await s.account_tokens.get("d1", "reset_password", NOW + 2) is None


async def test_a_link_serves_only_its_purpose_and_only_before_it_expires(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(link())
        assert await s.account_tokens.consume("d1", "signup", NOW) is None
        assert await s.account_tokens.get("d1", "reset_password", NOW + 600) is None
        assert await s.account_tokens.consume("d1", "reset_password", NOW + 600) is None
        assert await s.account_tokens.consume("d1", "reset_password", NOW + 599) is not None


async def test_revoke_for_user_ends_that_users_links_of_that_purpose(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(link("a"))
        await s.account_tokens.create(link("b"))
        await s.account_tokens.create(link("c", purpose="verify_email"))
        await s.account_tokens.create(link("d", user_id="u2"))
        assert await s.account_tokens.revoke_for_user("u1", "reset_password", NOW) == 2
        assert await s.account_tokens.consume("a", "reset_password", NOW) is None
        assert await s.account_tokens.consume("c", "verify_email", NOW) is not None
        assert await s.account_tokens.consume("d", "reset_password", NOW) is not None


async def test_of_concurrent_uses_exactly_one_wins(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(link())

    async def use() -> bool:
        async with sql_db.transaction() as s:
            return await s.account_tokens.consume("d1", "reset_password", NOW) is not None

    results = await asyncio.gather(*(use() for _ in range(8)))
    assert results.count(True) == 1


def invitation(digest: str, email: str, *, created_at: int = NOW) -> AccountToken:
    return AccountToken(
        digest=digest,
        purpose="invitation",
        email=email,
        user_id=None,
        created_at=created_at,
        expires_at=created_at + 600,
        data={"name": "Nora"},
    )


async def test_pending_invitations_are_listed_and_withdrawn_by_address(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(invitation("i1", "nora@example.com"))
        await s.account_tokens.create(invitation("i2", "bob@example.com", created_at=NOW + 1))
        await s.account_tokens.create(invitation("i3", "old@example.com", created_at=NOW - 600))
        await s.account_tokens.create(link("r1"))  # alice@example.com, another purpose
        await s.account_tokens.create(invitation("i4", "used@example.com"))
        assert await s.account_tokens.consume("i4", "invitation", NOW) is not None
    async with sql_db.transaction() as s:
        pending = await s.account_tokens.list_pending("invitation", NOW)
        assert [t.digest for t in pending] == ["i1", "i2"]  # oldest first; not expired, not used
        assert pending[0].data == {"name": "Nora"}
        assert await s.account_tokens.revoke_for_email("nora@example.com", "invitation", NOW) == 1
        assert await s.account_tokens.revoke_for_email("nora@example.com", "invitation", NOW) == 0
        assert await s.account_tokens.revoke_for_email("alice@example.com", "invitation", NOW) == 0
        assert await s.account_tokens.consume("i1", "invitation", NOW) is None
        assert [t.digest for t in await s.account_tokens.list_pending("invitation", NOW)] == ["i2"]
        assert await s.account_tokens.get("r1", "reset_password", NOW) is not None


async def test_delete_for_user_removes_every_link_of_that_user_only(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.account_tokens.create(link("a"))
        await s.account_tokens.create(link("c", purpose="verify_email"))
        await s.account_tokens.create(link("d", user_id="u2"))
        assert await s.account_tokens.revoke_for_user("u1", "verify_email", NOW) == 1  # used
        assert await s.account_tokens.delete_for_user("u1") == 2
        assert await s.account_tokens.get("a", "reset_password", NOW) is None
        assert await s.account_tokens.get("d", "reset_password", NOW) is not None
