"""Signing keys: publish-ahead rotation, retirement, pruning, encryption at rest (issue 3)."""

from __future__ import annotations

import re

import jwt
import pytest
from sqlalchemy import text

from tests.server.harness import API, ServerEnv
from tests.support.clients import resource_server
from tests.support.database import forget_keys
from tests.support.settings import FAST_HASH
from tokensmith.core.jose import b64url_encode as b64url
from tokensmith.core.keys import KeyLoadError
from tokensmith.settings import Settings


class CachingResourceServer:
    """A resource server that caches the JWKS for its ``max-age``, like a well-behaved one."""

    def __init__(self, env: ServerEnv) -> None:
        self.env = env
        self.keys: jwt.PyJWKSet | None = None
        self.fresh_until = 0.0
        self.fetches = 0

    async def validate(self, token: str) -> dict[str, object]:
        now = self.env.clock()
        if self.keys is None or now >= self.fresh_until:
            response = await self.env.http.get("/jwks.json")
            max_age = int(re.search(r"max-age=(\d+)", response.headers["cache-control"]).group(1))  # type: ignore[union-attr]
            self.keys = jwt.PyJWKSet.from_dict(response.json())
            self.fresh_until = now + max_age
            self.fetches += 1
        kid = jwt.get_unverified_header(token)["kid"]
        claims: dict[str, object] = jwt.decode(
            token,
            self.keys[kid],
            algorithms=["ES256"],
            audience=API,
            options={"verify_iat": False, "verify_exp": False},
        )
        return claims


async def test_rotation_causes_no_failed_validation_at_a_caching_resource_server(
    server_env: ServerEnv,
) -> None:
    env = server_env
    runtime = env.app.state.runtime
    rs_client = await resource_server(env)
    rs = CachingResourceServer(env)
    old_kid = runtime.server.keys.signing_key("ES256", int(env.clock())).kid
    failures, kids = 0, set()
    rotated = None
    for minute in range(180):
        if minute == 10:
            rotated = await env.admin.rotate_key("ES256", publish_ahead=3600)
        await runtime.reload_keys()
        token = (await env.token(rs_client, {"grant_type": "client_credentials"})).json()[
            "access_token"
        ]
        kids.add(jwt.get_unverified_header(token)["kid"])
        try:
            await rs.validate(token)
        except (jwt.PyJWTError, KeyError):
            failures += 1
        env.clock.advance(60)
    assert rotated is not None
    assert failures == 0
    assert kids == {old_kid, rotated.kid}  # both keys signed, one after the other
    assert rs.fetches <= 180 * 60 // 300 + 1


async def test_new_key_is_published_before_it_signs(server_env: ServerEnv) -> None:
    env = server_env
    runtime = env.app.state.runtime
    key = await env.admin.rotate_key("ES256", publish_ahead=600)
    await runtime.reload_keys()
    published = {k["kid"] for k in (await env.http.get("/jwks.json")).json()["keys"]}
    assert key.kid in published
    assert runtime.server.keys.signing_key("ES256", int(env.clock())).kid != key.kid
    env.clock.advance(601)
    assert runtime.server.keys.signing_key("ES256", int(env.clock())).kid == key.kid


async def test_retired_keys_stay_published_until_their_tokens_expire_then_prune(
    server_env: ServerEnv,
) -> None:
    env = server_env
    runtime = env.app.state.runtime
    old = runtime.server.keys.signing_key("ES256", int(env.clock())).kid
    await env.admin.rotate_key("ES256", publish_ahead=0)
    await runtime.reload_keys()
    kids = {k["kid"] for k in (await env.http.get("/jwks.json")).json()["keys"]}
    assert old in kids
    assert await env.admin.prune_keys() == 0
    env.clock.advance(env.settings.access_token_ttl + env.settings.id_token_ttl + 1)
    await runtime.reload_keys()
    kids = {k["kid"] for k in (await env.http.get("/jwks.json")).json()["keys"]}
    assert old not in kids
    assert await env.admin.prune_keys() == 1


async def test_private_keys_are_encrypted_when_a_kek_is_set(
    settings: Settings, clock: object
) -> None:
    from tests.server.harness import ServerEnv as Env

    await forget_keys(str(settings.database_url))  # a first start, with a KEK
    kek = b64url(bytes(range(32)))
    with_kek = Settings(
        issuer=settings.issuer,
        database_url=settings.database_url,
        key_encryption_key=kek,  # type: ignore[arg-type]
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with (
        Env.start(with_kek, clock) as env,  # type: ignore[arg-type]
        env.admin.db.engine.connect() as conn,
    ):
        stored = (await conn.execute(text("SELECT private_key FROM ts_signing_keys"))).scalars()
        values = list(stored)
    assert values
    assert all(v.startswith("aesgcm:v1:") and "PRIVATE KEY" not in v for v in values)
    # the same database without the KEK refuses to start, with a clear message
    without = Settings(
        issuer=settings.issuer,
        database_url=settings.database_url,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    with pytest.raises(KeyLoadError, match="TOKENSMITH_KEY_ENCRYPTION_KEY"):
        async with Env.start(without, clock):  # type: ignore[arg-type]
            pass
