"""Bring your own users (issue 18 item 1): the server signs in the members of an application's
own table (docs/examples/accounts_bcrypt.py), with bcrypt hashes written by another framework,
re-hashed to argon2 on login only when the operator allows writes. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from docs.examples.accounts_bcrypt import members
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.server.harness import ServerEnv
from tests.support.byo import PASSWORD, byo_env
from tests.support.oidc import login, oidc_client
from tests.support.password_login import attempt
from tokensmith.core.accounts import Accounts, StoreAccounts
from tokensmith.core.clock import FakeClock
from tokensmith.core.throttle import ACCOUNT
from tokensmith.settings import Settings


async def stored_hash(engine: AsyncEngine, member: int = 1) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(sa.select(members.c.password).where(members.c.id == member))
    return str(value)


async def sign_in(env: ServerEnv, username: str = "alice@example.com") -> dict[str, Any]:
    client = await oidc_client(env)
    return await login(env, client, username=username)


@pytest.mark.parametrize("allow_writes", [True, False])
async def test_bcrypt_member_signs_in_and_is_rehashed_only_when_writes_are_allowed(
    settings: Settings, clock: FakeClock, tmp_path: Path, allow_writes: bool
) -> None:
    async with byo_env(settings, clock, tmp_path, allow_writes=allow_writes) as (env, engine):
        assert (await stored_hash(engine)).startswith("$2b$")
        tokens = await sign_in(env, username="ALICE@example.com")  # any case: normalised
        info = (
            await env.http.get(
                "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
        ).json()
        assert info["sub"] == "member-1"
        assert info["email"] == "Alice@Example.com"
        assert info["name"] == "Alice"
        after = await stored_hash(engine)
        if allow_writes:
            assert after.startswith("$argon2id$")
            # and the argon2 hash signs the member in from now on
            await sign_in(env)
            assert await stored_hash(engine) == after
        else:
            assert after.startswith("$2b$")
        # tokensmith's own users table was never used
        assert await env.count("ts_users") == 0


async def test_wrong_password_disabled_member_and_unknown_login_are_refused(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    async with byo_env(settings, clock, tmp_path, allow_writes=True) as (env, engine):
        client = await oidc_client(env)
        ua = env.browser()
        for username, password in (
            ("alice@example.com", "wrong password"),
            ("bob@example.com", PASSWORD),  # is_active false
            ("nobody@example.com", PASSWORD),
        ):
            response = await attempt(env, ua, client, username, password)
            assert response.status_code == 401, username
        assert (await stored_hash(engine)).startswith("$2b$")


async def test_throttling_is_keyed_by_the_members_subject(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    async with byo_env(settings, clock, tmp_path, allow_writes=True) as (env, _):
        client = await oidc_client(env)
        ua = env.browser()
        spellings = ["alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.com"]
        for i in range(ACCOUNT.free_attempts):
            wrong = await attempt(env, ua, client, spellings[i % 3], "wrong password")
            assert wrong.status_code == 401
        locked = await attempt(env, ua, client, "alice@example.com", PASSWORD)
        assert locked.status_code == 429
        assert (
            await env.scalar("SELECT count(*) FROM ts_login_failures WHERE key = 'user:member-1'")
            == 1
        )
        clock.advance(ACCOUNT.base_delay)
        assert (await attempt(env, ua, client, "alice@example.com", PASSWORD)).status_code == 303


def make_accounts() -> StoreAccounts:
    """A factory for ``TOKENSMITH_ACCOUNTS`` (this module's path)."""
    return StoreAccounts()


def not_accounts() -> object:
    return object()


def test_accounts_setting_names_a_factory() -> None:
    settings = Settings(accounts=" tests.server.test_accounts_byo:make_accounts ")
    made = settings.load_accounts()
    assert isinstance(made, StoreAccounts)
    assert isinstance(made, Accounts)
    assert Settings().load_accounts() is None
    for bad in ("tests.server.test_accounts_byo", ":make_accounts", "x:not-a-name"):
        with pytest.raises(ValueError, match="module:factory"):
            Settings(accounts=bad)
    with pytest.raises(TypeError, match="Accounts"):
        Settings(accounts="tests.server.test_accounts_byo:not_accounts").load_accounts()
