"""Request rate limits at the token, revocation and introspection endpoints, per client id,
with the ``limits`` library: a moving window in Redis (shared by every process) when Redis is
configured, in process memory otherwise (then each process counts on its own).

A refused request gets 429 with ``Retry-After`` and an OAuth error body; it is refused before
any client authentication or database work.
"""

from __future__ import annotations

import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from tokensmith.core.errors import SlowDown
from tokensmith.settings import Settings


class RateLimiter:
    def __init__(self, settings: Settings, redis: Redis | None) -> None:
        self.item: RateLimitItem | None = (
            parse(settings.token_rate_limit) if settings.token_rate_limit else None
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

    async def check(self, scope: str, key: str) -> None:
        """Count one request for ``key``; raise ``SlowDown`` (429) past the limit."""
        if self.item is None:
            return
        if await self.limiter.hit(self.item, scope, key):
            return
        stats = await self.limiter.get_window_stats(self.item, scope, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise SlowDown(
            f"too many requests for this client; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
