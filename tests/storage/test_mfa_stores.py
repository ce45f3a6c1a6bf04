"""Store contract: second factors (``core.ports.TotpStore``, ``RecoveryCodeStore``) on SQLite
and PostgreSQL, and the pending user of an interaction (``InteractionStore.set_pending``) on
every implementation. A time step and a recovery code are used once, also by 20 concurrent
transactions."""

from __future__ import annotations

import asyncio

from tokensmith.core.models import AuthorizationRequest, Interaction
from tokensmith.storage.compose import Database

N = 20


async def test_totp_begin_confirm_and_steps(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        assert await s.totp.get("u1") is None
        assert await s.totp.begin("u1", "p1:first", 100)
        assert await s.totp.begin("u1", "p1:second", 101)  # replaces the unconfirmed one
        credential = await s.totp.get("u1")
        assert credential is not None
        assert credential.sealed_secret == "p1:second"
        assert credential.confirmed_at is None
        assert await s.totp.confirm("u1", 102)
        assert not await s.totp.confirm("u1", 103)
        assert not await s.totp.begin("u1", "p1:third", 104)  # a confirmed one stays
        assert await s.totp.use_step("u1", 50)
        assert not await s.totp.use_step("u1", 50)
        assert not await s.totp.use_step("u1", 49)
        assert await s.totp.use_step("u1", 51)
        credential = await s.totp.get("u1")
        assert credential is not None
        assert (credential.sealed_secret, credential.confirmed_at, credential.last_step) == (
            "p1:second",
            102,
            51,
        )
        assert await s.totp.delete("u1")
        assert await s.totp.get("u1") is None


async def test_one_time_step_is_used_once_by_concurrent_transactions(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.totp.begin("u1", "p1:x", 1)
        await s.totp.confirm("u1", 1)

    async def use() -> bool:
        async with sql_db.transaction() as s:
            return await s.totp.use_step("u1", 1000)

    assert sum(await asyncio.gather(*(use() for _ in range(N)))) == 1


async def test_recovery_codes_are_used_once(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.recovery_codes.replace("u1", ("a" * 64, "b" * 64), 1)
        await s.recovery_codes.replace("u2", ("a" * 64,), 1)
        assert await s.recovery_codes.count_unused("u1") == 2

    async def use() -> bool:
        async with sql_db.transaction() as s:
            return await s.recovery_codes.use("u1", "a" * 64, 2)

    assert sum(await asyncio.gather(*(use() for _ in range(N)))) == 1
    async with sql_db.transaction() as s:
        assert await s.recovery_codes.count_unused("u1") == 1
        assert await s.recovery_codes.count_unused("u2") == 1  # another user's code
        assert not await s.recovery_codes.use("u1", "c" * 64, 3)
        await s.recovery_codes.replace("u1", ("d" * 64,), 4)
        assert not await s.recovery_codes.use("u1", "b" * 64, 5)  # replaced
        assert await s.recovery_codes.delete_all("u1") == 1
        assert await s.recovery_codes.count_unused("u1") == 0


async def test_an_interaction_remembers_its_pending_user(db: Database) -> None:
    request = AuthorizationRequest(
        client_id="c",
        redirect_uri="https://rp.test/cb",
        redirect_uri_sent=True,
        scopes=("openid",),
        state=None,
        code_challenge="x" * 43,
        audience="",
        acr_values=("urn:tokensmith:acr:mfa",),
    )
    now = 2_000_000_000
    interaction = Interaction("ts_ix_1", "b" * 64, request, now, now + 600)
    async with db.transaction() as s:
        await s.interactions.create(interaction)
        assert (await s.interactions.get("ts_ix_1", now)) == interaction  # nobody pending
        assert not await s.interactions.set_pending("ts_ix_unknown", "u1", now, 0)
        assert await s.interactions.set_pending("ts_ix_1", "u1", now + 5, 2**40)
        got = await s.interactions.get("ts_ix_1", now + 10)
        assert got is not None
        # the security stamp the password was checked against, a BIGINT
        assert (got.pending_user_id, got.pending_auth_time, got.pending_stamp) == (
            "u1",
            now + 5,
            2**40,
        )
        assert got.request == request
        assert got.expires_at == now + 600
        await s.interactions.delete("ts_ix_1")
        assert not await s.interactions.set_pending("ts_ix_1", "u1", now, 0)
