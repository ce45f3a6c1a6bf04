"""Short-lived state in Redis (``TOKENSMITH_REDIS_URL``): authorization codes, login/consent
transactions, the client-assertion ``jti`` replay cache, the JWT deny-list and the login attempt
counters (each reservation one Lua script); and the connection itself and the pub/sub channel on
which admin changes invalidate the servers' client/API caches.

Every key expires with the value it holds, so Redis needs no pruning. Consuming a code is one
atomic Lua script (``GET`` + ``DEL`` + tombstone), so of concurrent redemptions across any number
of processes exactly one wins, and a replay finds the tombstone (which names the grant to revoke).
When Redis is unreachable the calls raise ``redis.exceptions.RedisError``; the server answers 503
and nothing half-written remains (codes are only ever created or consumed whole).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tokensmith.core.models import AuthorizationCode, AuthorizationRequest, Interaction
from tokensmith.core.throttle import BackoffPolicy, FailureCount, Reservation


def connect(url: str, *, timeout: float) -> Redis:
    """The Redis client for ``url``; connections are made lazily, so a server whose Redis is
    down starts, answers 503 where Redis is needed, and recovers when it returns."""
    return Redis.from_url(
        url,
        # a pooled connection that Redis closed (a restart) fails its next command, and a Redis
        # that is still loading its data answers LOADING (a ConnectionError too): retry on a
        # fresh connection with a short back-off. Not on timeouts: the command may have run
        # (a code consumed twice would look like a replay).
        retry=Retry(
            ExponentialBackoff(cap=0.5, base=0.05), 3, supported_errors=(RedisConnectionError,)
        ),
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


async def follow_invalidations(
    redis: Redis, channel: str, invalidate: Callable[[str, str], None]
) -> None:
    """Call ``invalidate(kind, key)`` for every ``kind:key`` message published on ``channel``
    (an admin changed a client or an API), forever; reconnects with back-off (1 s doubling up
    to 30 s) when Redis is unreachable."""
    delay = 1.0
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                delay = 1.0
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    kind, _, key = str(message["data"]).partition(":")
                    invalidate(kind, key)
        except RedisError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


TOMBSTONE_TTL = 3600
"""How long a consumed code is remembered, so that a replay revokes what it issued."""

_CONSUME = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], value, 'EX', ARGV[1])
end
return value
"""


def _dump(value: Any) -> str:
    return json.dumps(dataclasses.asdict(value), separators=(",", ":"))


def _code(raw: str | bytes, consumed_at: int | None) -> AuthorizationCode:
    data = json.loads(raw)
    data["scopes"] = tuple(data["scopes"])
    data["amr"] = tuple(data.get("amr", ("pwd",)))
    data["consumed_at"] = consumed_at
    return AuthorizationCode(**data)


class RedisCodeStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._consume = redis.register_script(_CONSUME)

    def _keys(self, digest: str) -> tuple[str, str]:
        return f"{self._prefix}code:{digest}", f"{self._prefix}code-used:{digest}"

    async def create(self, code: AuthorizationCode) -> None:
        live, _ = self._keys(code.digest)
        await self._redis.set(live, _dump(code), exat=code.expires_at + 1)

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        raw = await self._consume(keys=list(self._keys(digest)), args=[TOMBSTONE_TTL])
        return _code(raw, now) if raw is not None else None

    async def get(self, digest: str) -> AuthorizationCode | None:
        _, used = self._keys(digest)
        raw = await self._redis.get(used)
        return _code(raw, 0) if raw is not None else None


_INDEX = """
redis.call('SADD', KEYS[1], ARGV[1])
local left = tonumber(ARGV[2]) - tonumber(redis.call('TIME')[1])
if redis.call('TTL', KEYS[1]) < left then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
"""


class RedisInteractionStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._index = redis.register_script(_INDEX)

    def _key(self, interaction_id: str) -> str:
        return f"{self._prefix}ix:{interaction_id}"

    async def create(self, interaction: Interaction) -> None:
        await self._redis.set(
            self._key(interaction.id), _dump(interaction), exat=interaction.expires_at
        )

    async def get(self, interaction_id: str, now: int) -> Interaction | None:
        raw = await self._redis.get(self._key(interaction_id))
        if raw is None:
            return None
        data = json.loads(raw)
        request = data.pop("request")
        request["scopes"] = tuple(request["scopes"])
        request["prompt"] = tuple(request["prompt"])
        request["acr_values"] = tuple(request.get("acr_values", ()))
        interaction = Interaction(request=AuthorizationRequest(**request), **data)
        return interaction if interaction.expires_at > now else None

    async def delete(self, interaction_id: str) -> bool:
        return bool(await self._redis.delete(self._key(interaction_id)))

    async def set_pending(
        self, interaction_id: str, user_id: str, auth_time: int, stamp: int
    ) -> bool:
        """Rewrite the interaction with its pending user, keeping its expiry (``KEEPTTL``;
        ``XX``: never bring back one that expired or was deleted meanwhile)."""
        key = self._key(interaction_id)
        raw = await self._redis.get(key)
        if raw is None:
            return False
        data = json.loads(raw)
        data["pending_user_id"] = user_id
        data["pending_auth_time"] = auth_time
        data["pending_stamp"] = stamp
        done = await self._redis.set(
            key, json.dumps(data, separators=(",", ":")), keepttl=True, xx=True
        )
        if done:
            # the user's interactions, for delete_for_user; the set lives as long as its
            # longest-lived member
            await self._index(
                keys=[self._user_key(user_id)], args=[interaction_id, data["expires_at"]]
            )
        return bool(done)

    def _user_key(self, user_id: str) -> str:
        return f"{self._prefix}ix-user:{user_id}"

    async def delete_for_user(self, user_id: str) -> int:
        index = self._user_key(user_id)
        ids = await self._redis.smembers(index)
        keys = [self._key(str(i)) for i in ids]
        deleted = int(await self._redis.delete(*keys)) if keys else 0
        await self._redis.delete(index)
        return deleted


class RedisClientDocumentStore:
    """Fetched metadata documents, each key expiring with the document's cache lifetime."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, url: str) -> str:
        return f"{self._prefix}cimd:{url}"

    async def get(self, url: str, now: int) -> bytes | None:
        raw = await self._redis.get(self._key(url))
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["body"]).encode() if int(data["expires_at"]) > now else None

    async def put(self, url: str, body: bytes, expires_at: int) -> None:
        value = json.dumps({"body": body.decode(), "expires_at": expires_at})
        await self._redis.set(self._key(url), value, exat=expires_at)


class RedisAssertionJtiStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def use(self, client_id: str, jti: str, expires_at: int) -> bool:
        key = f"{self._prefix}ajti:{client_id}:{jti}"
        return bool(await self._redis.set(key, "1", nx=True, exat=expires_at + 60))


class RedisDenyList:
    """Revoked JWT ``jti``s, each kept until the token would have expired."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def deny(self, jti: str, expires_at: int) -> None:
        await self._redis.set(f"{self._prefix}deny:{jti}", "1", exat=expires_at + 1)

    async def is_denied(self, jti: str) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}deny:{jti}"))


_RESERVE = """
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local last_at = tonumber(redis.call('HGET', KEYS[1], 'last_at') or '0')
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[3])
if count >= free then
  local i = math.min(count - free, #ARGV - 4)
  if last_at + tonumber(ARGV[4 + i]) > now then
    return {0, count, last_at}
  end
end
count = count + 1
last_at = math.max(last_at, now)
redis.call('HSET', KEYS[1], 'count', count, 'last_at', last_at)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, count, last_at}
"""

_RELEASE = """
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
if count > 0 then
  redis.call('HINCRBY', KEYS[1], 'count', -1)
end
return count
"""


class RedisLoginFailureStore:
    """Login attempt counters as hashes (``count``, ``last_at``) that expire with the counter.
    A reservation is one Lua script (read, decide by the policy's back-off table, count), so
    concurrent reservations from any number of processes are serialised by Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    def _key(self, key: str) -> str:
        return f"{self._prefix}fail:{key}"

    async def get(self, key: str) -> FailureCount | None:
        data = await self._redis.hgetall(self._key(key))
        return FailureCount(int(data["count"]), int(data["last_at"])) if data else None

    async def reserve(self, key: str, now: int, *, policy: BackoffPolicy, ttl: int) -> Reservation:
        granted, count, last_at = await self._reserve(
            keys=[self._key(key)], args=[now, ttl, policy.free_attempts, *policy.steps()]
        )
        return Reservation(bool(granted), FailureCount(int(count), int(last_at)))

    async def release(self, key: str) -> None:
        await self._release(keys=[self._key(key)])

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._key(key))
