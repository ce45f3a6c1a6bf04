"""Rate limits at the token, revocation and introspection endpoints (server/ratelimit.py;
security review round two, finding 5).

The per-client limit is counted after client authentication, keyed by the authenticated client
(public clients: client id and address); a per-address limit counts failed client
authentications and refuses an address past it before authentication. Each repro of the review
is here, failing safely, on SQLite and PostgreSQL, each with the in-memory and the Redis limiter.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.server.harness import REDIRECT, ServerEnv, assert_oauth_error, basic
from tests.support.clients import machine
from tests.support.private_key_jwt import KeyPair, assertion, pkjwt_client
from tests.support.private_key_jwt import post as post_assertion
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.core.errors import SlowDown
from tokensmith.core.registration import NewClient
from tokensmith.server import ratelimit
from tokensmith.server.ratelimit import RateLimiter, address_key
from tokensmith.settings import Settings

ATTACKER = "203.0.113.9"
USER = "198.51.100.7"
CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest, database_url: str) -> Iterator[Settings]:
    """Settings with the in-memory limiter, or with Redis (where the counters then live)."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_settings")
    else:
        yield Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]


@asynccontextmanager
async def started(
    base: Settings, clock: FakeClock, **limits: str | None
) -> AsyncIterator[ServerEnv]:
    async with ServerEnv.start(base.model_copy(update=limits), clock) as env:
        yield env


@asynccontextmanager
async def from_address(env: ServerEnv, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests reach the app from ``address``."""
    transport = httpx.ASGITransport(app=env.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=env.settings.issuer) as http:
        yield http


async def as_client(
    http: httpx.AsyncClient, path: str, client: NewClient, form: dict[str, str]
) -> httpx.Response:
    """POST ``form`` to ``path`` with the client's real credentials (Basic)."""
    assert client.client_secret is not None
    header = {"Authorization": basic(client.client.client_id, client.client_secret)}
    return await http.post(path, data=form, headers=header)


ENDPOINTS = {
    "token": ("token_path", CLIENT_CREDENTIALS, 200),
    "introspect": ("introspect_path", {"token": "ts_at_unknown"}, 200),
    "revoke": ("revoke_path", {"token": "ts_rt_unknown"}, 200),
}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_secret_less_requests_do_not_spend_the_clients_budget(
    limiter: Settings, clock: FakeClock, endpoint: str
) -> None:
    """Repro 1: five ``client_id=<machine>`` requests without a secret used to lock the machine
    out for a minute; they fail authentication and now count only against their address."""
    async with started(limiter, clock, token_rate_limit="3/minute") as env:
        conf = await machine(env, can_introspect=True)
        path_setting, form, ok = ENDPOINTS[endpoint]
        path = getattr(env.settings, path_setting)
        async with from_address(env, ATTACKER) as attacker:
            for _ in range(5):
                claimed = {**form, "client_id": conf.client.client_id}
                assert_oauth_error(await attacker.post(path, data=claimed), "invalid_client", 401)
        async with from_address(env, USER) as http:
            statuses = [(await as_client(http, path, conf, form)).status_code for _ in range(4)]
        assert statuses == [ok, ok, ok, 429]  # its whole budget, and the limit still holds


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_another_spelling_of_the_path_spends_the_same_budget(
    limiter: Settings, clock: FakeClock, endpoint: str
) -> None:
    """The router also routes ``/token%0A`` (``/token`` and a newline: the route's pattern ends
    in ``$``) to the token endpoint; its requests spend the client's one budget of that
    endpoint, not a second one of their own."""
    async with started(limiter, clock, token_rate_limit="3/minute") as env:
        conf = await machine(env, can_introspect=True)
        path_setting, form, ok = ENDPOINTS[endpoint]
        path = getattr(env.settings, path_setting)
        async with from_address(env, USER) as http:
            statuses = [(await as_client(http, path, conf, form)).status_code for _ in range(3)]
            other = await as_client(http, path + "%0A", conf, form)
        assert statuses == [ok, ok, ok]
        assert_oauth_error(other, "slow_down", 429)


async def test_public_client_is_counted_per_client_and_address(
    limiter: Settings, clock: FakeClock
) -> None:
    """Anyone can send a public client's id: one caller exhausting the SPA's budget does not
    lock out its users elsewhere."""
    async with started(limiter, clock, token_rate_limit="3/minute") as env:
        spa = await env.client(client_type="public", name="CloudDocs SPA")
        form = {
            "grant_type": "authorization_code",
            "code": "ts_ac_not-a-code",
            "redirect_uri": REDIRECT,
            "code_verifier": "v" * 43,
            "client_id": spa.client.client_id,
        }
        async with from_address(env, ATTACKER) as attacker:
            statuses = [(await attacker.post("/token", data=form)).status_code for _ in range(5)]
        assert statuses == [400, 400, 400, 429, 429]
        async with from_address(env, USER) as user:
            assert_oauth_error(await user.post("/token", data=form), "invalid_grant")


def encoded_basic(client_id: str, secret: str, *, encode: int) -> str:
    """Basic credentials whose client id has its first ``encode`` characters percent-encoded
    (RFC 6749 §2.3.1: the id is form-urlencoded before Base64, so each decodes to the same)."""
    head = "".join(f"%{ord(c):02X}" for c in client_id[:encode])
    raw = f"{head}{client_id[encode:]}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def test_percent_encoded_basic_ids_share_the_decoded_clients_budget(
    limiter: Settings, clock: FakeClock
) -> None:
    """Repro 2: each new percent-encoding of the id used to open a fresh bucket."""
    async with started(limiter, clock, token_rate_limit="3/minute") as env:
        conf = await machine(env)
        assert conf.client_secret is not None
        statuses = []
        async with from_address(env, USER) as http:
            for encode in range(1, 6):
                header = {
                    "Authorization": encoded_basic(
                        conf.client.client_id, conf.client_secret, encode=encode
                    )
                }
                response = await http.post("/token", data=CLIENT_CREDENTIALS, headers=header)
                statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        assert (await env.token(conf, CLIENT_CREDENTIALS)).status_code == 429


async def test_assertion_only_requests_count_against_the_verified_client(
    limiter: Settings, clock: FakeClock
) -> None:
    """Repro 3: ``private_key_jwt`` requests without a ``client_id`` parameter used to share one
    ``anonymous`` bucket; each client now has its own."""
    async with started(limiter, clock, token_rate_limit="2/minute") as env:
        keys_a, keys_b = KeyPair(), KeyPair()
        first, second = await pkjwt_client(env, keys_a), await pkjwt_client(env, keys_b)
        statuses = [
            (await post_assertion(env, assertion(env, first, keys_a))).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert (await post_assertion(env, assertion(env, second, keys_b))).status_code == 200


async def test_failed_authentications_are_limited_per_address(
    limiter: Settings, clock: FakeClock
) -> None:
    """Past the failure limit an address is refused before authentication, even with the right
    secret and at every endpoint; other addresses are served."""
    async with started(limiter, clock, token_failure_rate_limit="3/minute") as env:
        conf = await machine(env, can_introspect=True)
        wrong = {"Authorization": basic(conf.client.client_id, "guess")}
        async with from_address(env, ATTACKER) as attacker:
            for _ in range(3):
                failed = await attacker.post("/token", data=CLIENT_CREDENTIALS, headers=wrong)
                assert_oauth_error(failed, "invalid_client", 401)
            limited = await attacker.post("/token", data=CLIENT_CREDENTIALS, headers=wrong)
            body = assert_oauth_error(limited, "slow_down", 429)
            assert "failed client authentications" in body["error_description"]
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            refused = await as_client(attacker, "/token", conf, CLIENT_CREDENTIALS)
            assert_oauth_error(refused, "slow_down", 429)  # the right secret, same address
            for path in ("/introspect", "/revoke"):
                response = await as_client(attacker, path, conf, {"token": "ts_at_x"})
                assert_oauth_error(response, "slow_down", 429)
        async with from_address(env, USER) as user:
            assert (await as_client(user, "/token", conf, CLIENT_CREDENTIALS)).status_code == 200


async def test_successful_requests_do_not_spend_the_address_budget(
    limiter: Settings, clock: FakeClock
) -> None:
    async with started(limiter, clock, token_failure_rate_limit="2/minute") as env:
        conf = await machine(env)
        async with from_address(env, USER) as http:
            statuses = [
                (await as_client(http, "/token", conf, CLIENT_CREDENTIALS)).status_code
                for _ in range(5)
            ]
        assert statuses == [200] * 5


def test_addresses_are_counted_as_ipv4_or_ipv6_slash_64() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:DB8:1:2::ffff") == "2001:db8:1:2::/64"
    assert address_key("unknown") == "unknown"


async def test_one_ipv6_slash_64_shares_one_failure_budget(
    limiter: Settings, clock: FakeClock
) -> None:
    """A host holding a /64 cannot get a fresh budget from each of its 2^64 addresses."""
    async with started(limiter, clock, token_failure_rate_limit="2/minute") as env:
        conf = await machine(env)
        wrong = {"Authorization": basic(conf.client.client_id, "guess")}
        statuses = []
        for host in ("2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c"):
            async with from_address(env, host) as http:
                response = await http.post("/token", data=CLIENT_CREDENTIALS, headers=wrong)
                statuses.append(response.status_code)
        assert statuses == [401, 401, 429]
        async with from_address(env, "2001:db8:1:3::a") as other:
            assert (await as_client(other, "/token", conf, CLIENT_CREDENTIALS)).status_code == 200


# -- concurrency: the bounds hold exactly under 30 parallel requests (M-04) -------------------
# A first request fills the client cache, so that the 30 do not queue for the database (SQLite
# has one connection) and really reach the counters together.


async def test_parallel_requests_never_exceed_the_client_limit(
    limiter: Settings, clock: FakeClock
) -> None:
    async with started(limiter, clock, token_rate_limit="6/minute") as env:
        conf = await machine(env)
        async with from_address(env, USER) as http:
            assert (await as_client(http, "/token", conf, CLIENT_CREDENTIALS)).status_code == 200
            responses = await asyncio.gather(
                *(as_client(http, "/token", conf, CLIENT_CREDENTIALS) for _ in range(30))
            )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [429] * 25


async def test_parallel_failures_never_exceed_the_address_limit(
    limiter: Settings, clock: FakeClock
) -> None:
    """Spraying client ids: each request looks its (unknown) client up in the database, so all
    30 pass the address check before any failure is counted; the count itself holds the bound."""
    async with started(limiter, clock, token_failure_rate_limit="5/minute") as env:
        async with from_address(env, ATTACKER) as attacker:
            responses = await asyncio.gather(
                *(
                    attacker.post(
                        "/token",
                        data=CLIENT_CREDENTIALS,
                        headers={"Authorization": basic(f"ts_ci_{uuid.uuid4().hex}", "guess")},
                    )
                    for _ in range(30)
                )
            )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [401] * 5 + [429] * 25


# -- the in-process failure hint (``RateLimiter._failed_at``) -------------------------------------


def memory_limiter(limit: str = "3/minute") -> RateLimiter:
    settings = Settings(
        issuer=ISSUER, database_url="sqlite+aiosqlite://", token_failure_rate_limit=limit
    )  # type: ignore[call-arg]
    return RateLimiter(settings, None)


class FakeTime:
    """``time.time`` for the limiter and the ``limits`` library alike (both read the module's)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000.0
        monkeypatch.setattr(time, "time", lambda: self.now)


async def test_the_failure_hint_refuses_the_address_past_its_limit_and_only_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeTime(monkeypatch)
    rl = memory_limiter()
    for _ in range(3):
        await rl.check_address(ATTACKER)
        await rl.count_failure(ATTACKER)
    with pytest.raises(SlowDown):
        await rl.check_address(ATTACKER)
    await rl.check_address(USER)  # never failed: answered without the storage


async def test_the_failure_hint_forgets_an_address_once_its_window_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeTime(monkeypatch)
    rl = memory_limiter()
    for _ in range(3):
        await rl.count_failure(ATTACKER)
    clock.now += 30
    with pytest.raises(SlowDown):
        await rl.check_address(ATTACKER)  # still in the window
    clock.now += 31
    await rl.check_address(ATTACKER)
    assert ATTACKER not in rl._failed_at


async def test_the_failure_hint_never_drops_an_address_still_in_its_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the bound, only addresses whose last failure left the window are forgotten: a
    flood of failures from many addresses cannot free the one that is past its limit."""
    clock = FakeTime(monkeypatch)
    monkeypatch.setattr(ratelimit, "_MAX_NOTED", 5)
    rl = memory_limiter()
    old = [f"192.0.2.{n}" for n in range(4)]
    for address in old:
        await rl.count_failure(address)
    clock.now += 61
    for _ in range(3):
        await rl.count_failure(ATTACKER)
    for n in range(20):
        clock.now += 1
        await rl.count_failure(f"198.51.100.{n}")
    assert not set(old) & set(rl._failed_at)  # out of their window: swept
    with pytest.raises(SlowDown):
        await rl.check_address(ATTACKER)
