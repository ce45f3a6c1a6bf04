"""Request rate limits at the token, revocation and introspection endpoints, with the ``limits``
library: a moving window in Redis (shared by every process) when Redis is configured, in process
memory otherwise (then each process counts on its own).

Two limits, both counted only once the request's client authentication has been decided
(:class:`tokensmith.core.client_auth.ClientRateLimit`), so nothing a request merely *claims*
chooses whose budget it spends:

- ``token_rate_limit``, per endpoint and per **authenticated** client: the client id that the
  secret, the assertion or (public clients) the ``client_id`` proved, after the
  form-urldecoding of Basic credentials (RFC 6749 §2.3.1). A public client proves nothing
  (anyone may send its id), so its requests are counted per client id **and** client address:
  one caller can exhaust only its own share, never every user of a single-page app.
- ``token_failure_rate_limit``, per client address (IPv6: per /64), shared by the three
  endpoints: requests whose client authentication failed. An address that is past it is refused
  before any credential is looked at (no database, HMAC or signature work); requests already in
  flight when the limit filled are answered 429 once they fail, so one address gets at most that
  many ``invalid_client`` answers per window. Legitimate traffic never spends it: counting every
  request per address instead would throttle busy back-ends and shared NAT or proxy addresses
  with no attacker present, and would only repeat the per-client limit.

Past a limit: 429 ``slow_down`` with ``Retry-After``, in the OAuth JSON error format.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from tokensmith.core.errors import SlowDown
from tokensmith.core.models import Client
from tokensmith.settings import Settings


@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """The part of a client address that rate limits count by: an IPv4 address, or the /64
    network of an IPv6 address (one subscriber or host usually holds a whole /64, so counting
    single IPv6 addresses would give it 2^64 budgets). IPv4-mapped IPv6 counts as IPv4.

    Cached (a pure function of the string): parsing the address is a visible part of a
    ``client_credentials`` request, and a busy server sees the same callers again and again."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket peer, "unknown"): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


_MAX_NOTED = 10_000
"""Beyond this many noted addresses, the ones whose last failure left the window are dropped
(addresses still in their window are always kept: dropping one would skip its check)."""
_SWEEP = 1_000
"""At most this many of the oldest noted addresses are looked at per counted failure."""


def _part(value: str) -> str:
    """One part of a limiter key: ``limits`` joins parts with '/', so none may contain one."""
    return quote(value, safe="")


class RateLimiter:
    def __init__(self, settings: Settings, redis: Redis | None) -> None:
        self.per_client: RateLimitItem | None = (
            parse(settings.token_rate_limit) if settings.token_rate_limit else None
        )
        self.failures: RateLimitItem | None = (
            parse(settings.token_failure_rate_limit) if settings.token_failure_rate_limit else None
        )
        self.registrations: RateLimitItem | None = (
            parse(settings.registration_rate_limit) if settings.registration_rate_limit else None
        )
        storage: Storage
        if redis is not None:
            # the server's own connection pool: one pool, closed with the server's client
            shared: dict[str, Any] = {"connection_pool": redis.connection_pool}
            storage = RedisStorage(
                "async+redis://localhost:6379",  # unused: the pool below is what connects
                implementation="redispy",
                key_prefix=settings.redis_prefix + "limits",
                **shared,
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self._local = redis is None
        self._failed_at: dict[str, float] = {}
        """In-process counting only: address -> time of its last counted failure. An address
        that is not here, or whose last failure is older than the failure window, has nothing
        in that window, so :meth:`check_address` answers without asking the storage (the
        moving-window lookup was a visible part of every ``client_credentials`` request)."""

    def for_request(self, endpoint: str, address: str) -> RequestLimits:
        """The limits of one request to ``endpoint`` from the client address ``address``; the
        methods below take addresses as :func:`address_key` gives them."""
        return RequestLimits(self, endpoint, address_key(address))

    async def count_registration(self, address: str) -> None:
        """Count one request to the registration endpoint from ``address`` (its /64 for IPv6);
        past ``registration_rate_limit``: 429 before the body is read."""
        if self.registrations is None:
            return
        key = ("registration", _part(address_key(address)))
        if not await self.limiter.hit(self.registrations, *key):
            await self._refuse(self.registrations, key, "registration requests")

    async def check_address(self, address: str) -> None:
        """Refuse, before any authentication work, an address past its failure limit."""
        pending = self.address_check(address)
        if pending is not None:
            await pending

    def address_check(self, address: str) -> Awaitable[None] | None:
        """:meth:`check_address` as the token endpoint's form reader calls it: ``None`` when the
        address is known to be clear without asking the storage (no limit, or, counting in
        this process, no failure of the address in the window), else the check to await."""
        if self.failures is None:
            return None
        if self._local:
            failed_at = self._failed_at.get(address)
            if failed_at is None:
                return None
            if time.time() - failed_at > self.failures.get_expiry():
                del self._failed_at[address]
                return None
        return self._test_address(address, self.failures)

    async def _test_address(self, address: str, failures: RateLimitItem) -> None:
        key = ("failed-client-auth", _part(address))
        if not await self.limiter.test(failures, *key):
            await self._refuse(failures, key, "failed client authentications")

    def _note_failure(self, address: str) -> None:
        failed = self._failed_at
        failed.pop(address, None)  # re-inserted last: the dict stays ordered by time
        failed[address] = time.time()
        if len(failed) > _MAX_NOTED and self.failures is not None:
            # forget the addresses whose last failure left the window: the oldest come first,
            # so this stops at the first one still in it (no walk over the live ones)
            horizon = time.time() - self.failures.get_expiry()
            for stale, at in list(itertools.islice(failed.items(), _SWEEP)):
                if at >= horizon:
                    break
                del failed[stale]

    async def count_failure(self, address: str) -> None:
        """Count one failed client authentication from ``address``."""
        if self.failures is None:
            return
        if self._local:
            self._note_failure(address)  # before the hit: a check never misses a counted one
        key = ("failed-client-auth", _part(address))
        if not await self.limiter.hit(self.failures, *key):
            await self._refuse(self.failures, key, "failed client authentications")

    async def count_client(self, endpoint: str, client: Client, address: str) -> None:
        """Count one request of an authenticated client: per client id when the client is
        confidential, per client id and address when it is public (its id proves nothing)."""
        if self.per_client is None:
            return
        if client.is_confidential:
            key: tuple[str, ...] = (_part(endpoint), "client", _part(client.client_id))
        else:
            key = (_part(endpoint), "public", _part(client.client_id), _part(address))
        if not await self.limiter.hit(self.per_client, *key):
            await self._refuse(self.per_client, key, "requests for this client")

    async def count_caller(self, endpoint: str, client_id: str) -> None:
        """Count one request of a client that authenticated with an access token (the admin
        API), per client id, against ``token_rate_limit``."""
        if self.per_client is None:
            return
        key = (_part(endpoint), "bearer", _part(client_id))
        if not await self.limiter.hit(self.per_client, *key):
            await self._refuse(self.per_client, key, "requests for this client")

    async def _refuse(self, item: RateLimitItem, key: tuple[str, ...], what: str) -> NoReturn:
        stats = await self.limiter.get_window_stats(item, *key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise SlowDown(
            f"too many {what}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The :class:`~tokensmith.core.client_auth.ClientRateLimit` of one request."""

    limiter: RateLimiter
    endpoint: str
    address: str

    async def check_address(self) -> None:
        """Before authentication: refuse the request if its address is past its failure limit."""
        await self.limiter.check_address(self.address)

    def address_check(self) -> Awaitable[None] | None:
        """:meth:`check_address`, or ``None`` when nothing needs awaiting
        (:meth:`RateLimiter.address_check`)."""
        return self.limiter.address_check(self.address)

    async def authenticated(self, client: Client) -> None:
        await self.limiter.count_client(self.endpoint, client, self.address)

    async def failed(self) -> None:
        await self.limiter.count_failure(self.address)
