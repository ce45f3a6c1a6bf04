"""What the server owns for its lifetime: the engine, keys, pepper, hasher (and its thread pool)
and templates.

Built by the app's lifespan from ``Settings``; nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.admin import Admin, grant_grace, invalidation_channel
from tokensmith.core.accounts import Accounts
from tokensmith.core.clock import Clock
from tokensmith.core.discovery import authorization_server_metadata
from tokensmith.core.keys import KeyRing
from tokensmith.core.password_rules import BreachedPasswordChecker
from tokensmith.core.passwords import Passwords
from tokensmith.core.self_service import Links, SelfService
from tokensmith.core.server import AuthorizationServer
from tokensmith.server.browser import Cookies
from tokensmith.server.client_documents import HttpDocumentFetcher
from tokensmith.server.mail import Mailer, backend_for
from tokensmith.server.pages import Pages
from tokensmith.server.ratelimit import RateLimiter
from tokensmith.settings import Settings
from tokensmith.storage import redis as redis_storage
from tokensmith.storage.compose import Database, Ephemeral
from tokensmith.storage.sqlalchemy import keystore, migrate
from tokensmith.storage.sqlalchemy.audit import AuditWriter
from tokensmith.storage.sqlalchemy.engine import (
    create_engine,
    create_reader,
    is_sqlite,
    sqlite_file,
)
from tokensmith.storage.sqlalchemy.prune import prune

log = logging.getLogger("tokensmith.server")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hash_workers(settings: Settings, cpus: int | None = None) -> int:
    """The size of the password-hashing pool: ``password_hash_workers``, else one thread per
    usable CPU but one (at least 1). The loop keeps a CPU of its own: on one or two CPUs a
    single hash at a time, because more hashes at once on the same CPU are no faster (each
    is a full CPU's work for ``password_hash_parallelism`` lanes) but multiply the memory and
    the runnable threads the event loop shares its CPU with."""
    if settings.password_hash_workers is not None:
        return settings.password_hash_workers
    return max(1, (usable_cpus() if cpus is None else cpus) - 1)


def hash_limit(settings: Settings, workers: int) -> int | None:
    """The password operations admitted at once: the pool's threads and
    ``password_hash_queue`` waiting for them (``None``: no bound, when the queue's is 0)."""
    queue = settings.password_hash_queue
    return workers + queue if queue else None


def lower_thread_priority(increment: int) -> None:
    """Run the calling thread (and the threads it starts: argon2's lanes) ``increment`` nice
    levels below the rest of the process, so that the event loop wins the CPU whenever both
    want it: hashes use what the loop leaves and cannot starve token requests (Linux sets
    priorities per thread; elsewhere, or without permission, nothing changes)."""
    if increment <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + increment)
    except OSError as exc:
        log.warning("could not lower the priority of a password-hashing thread: %s", exc)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    server: AuthorizationServer
    pages: Pages
    cookies: Cookies
    clock: Clock
    metadata: dict[str, object]
    rate_limiter: RateLimiter
    audit: AuditWriter
    hashing: ThreadPoolExecutor
    """The bounded pool that verifies passwords (``hash_workers(settings)`` threads)."""
    mailer: Mailer
    """Sends the account flows' e-mail from a background task (``server/mail.py``)."""
    self_service: SelfService
    """Sign-up, e-mail verification, forgotten password (``core.self_service``)."""
    admin: Admin
    """The admin service on the server's database, for the admin API (``routes/admin.py``)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        clock: Clock,
        *,
        password_checker: BreachedPasswordChecker | None = None,
        accounts: Accounts | None = None,
    ) -> Runtime:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        redis = make_redis(settings)
        try:
            if settings.auto_migrate:
                await migrate.upgrade(engine)
            pepper = (
                settings.pepper.get_secret_value().encode()
                if settings.pepper is not None
                else await keystore.get_or_create_pepper(engine)
            )
            keys = await ensure_keys(engine, settings, clock)
        except BaseException:
            await engine.dispose()
            if redis is not None:
                await redis.aclose()
            raise
        workers = hash_workers(settings)
        hashing = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="tokensmith-hash",
            initializer=lower_thread_priority,
            initargs=(settings.password_hash_nice,),
        )
        passwords = Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_cost,
            parallelism=settings.password_hash_parallelism,
            executor=hashing,
            limit=hash_limit(settings, workers),
        )
        audit_writer = audit_writer_for(settings, engine)
        server = AuthorizationServer(
            policy=settings.policy(),
            keys=keys,
            pepper=pepper,
            passwords=passwords,
            clock=clock,
            audit=audit_writer.emit,
            accounts=accounts if accounts is not None else settings.load_accounts(),
            documents=document_fetcher(settings),
            kek=settings.kek(),
            totp_label=settings.totp_issuer_label(),
        )
        metadata = authorization_server_metadata(server.policy, grant_types=server.grants)
        self_service = SelfService(
            context=server.context,
            passwords=passwords,
            rules=settings.password_rules(checker=password_checker),
            links=Links(
                confirm=settings.url(settings.confirm_path),
                reset=settings.url(settings.reset_password_path),
                forgot=settings.url(settings.forgot_password_path),
                login=settings.url(settings.login_path),
            ),
        )
        db = Database(
            engine,
            Ephemeral(redis, settings.redis_prefix) if redis else None,
            reader=create_reader(settings.database_url),
        )
        if db.reader is not None or not is_sqlite(settings.database_url):
            # the caches' reloads off the request's transaction (on a SQLite file, off the one
            # write connection); an in-memory SQLite database has one connection for all
            server.context.reads = db.read

        def changed(kind: str, key: str) -> None:
            invalidate(server, kind, key)

        return cls(
            settings=settings,
            db=db,
            server=server,
            pages=Pages(settings),
            cookies=Cookies(settings, pepper),
            clock=clock,
            metadata=metadata,
            rate_limiter=RateLimiter(settings, redis),
            audit=audit_writer,
            hashing=hashing,
            mailer=Mailer(settings, backend_for(settings)),
            self_service=self_service,
            admin=Admin(settings, clock=clock, db=db, hashing=passwords, on_change=changed),
        )

    async def reload_keys(self) -> None:
        """Re-read the signing keys (a rotation made by the CLI or another process)."""
        self.server.keys = await ensure_keys(self.db.engine, self.settings, self.clock)

    async def reload_keys_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.key_reload_interval)
            try:
                await self.reload_keys()
            except Exception:  # a database hiccup must not stop the reloads
                log.exception("reloading the signing keys failed; keeping the current ones")

    async def follow_invalidations(self) -> None:
        """Forget cached clients and APIs as soon as an admin changes them (Redis pub/sub);
        reconnects with back-off, and the cache's TTL bounds staleness meanwhile."""
        if self.db.ephemeral is None:
            return
        await redis_storage.follow_invalidations(
            self.db.ephemeral.redis, invalidation_channel(self.settings), self._invalidate
        )

    def _invalidate(self, kind: str, key: str) -> None:
        invalidate(self.server, kind, key)

    async def prune_forever(self) -> None:
        """Prune expired rows every ``prune_interval`` seconds (all processes may do it: the
        deletes are idempotent and batched)."""
        while True:
            await asyncio.sleep(self.settings.prune_interval)
            try:
                report = await prune(
                    self.db.engine,
                    now=int(self.clock()),
                    grant_grace=grant_grace(self.settings),
                    audit_retention=self.settings.audit_retention_days * 86400,
                    registered_client_idle=self.settings.registered_client_idle_days * 86400,
                )
                log.info("pruned %d expired rows", report.total)
            except Exception:
                log.exception("pruning failed; will try again")

    def freeze_start_up(self) -> None:
        """``gc_freeze``: collect once, then move every object alive to the permanent
        generation (``gc.freeze``), so that the full collections to come, each a pause of the
        event loop, scan only what requests leave behind, not the app (about 170,000 objects:
        83 ms a collection, measured in docs/performance.md). Objects frozen here are still
        freed when their last reference goes; only a cycle among them would be kept."""
        if not self.settings.gc_freeze:
            return
        gc.collect()
        gc.freeze()
        log.info(
            "%d objects of the start-up left out of later garbage collections (gc_freeze)",
            gc.get_freeze_count(),
        )

    def start_tasks(self) -> None:
        """The background work of a server process: audit writer, key reloads, pruning,
        cache invalidations."""
        self.audit.start()
        self.mailer.start()
        self._tasks = [
            asyncio.create_task(self.reload_keys_forever()),
            asyncio.create_task(self.follow_invalidations()),
        ]
        if self.settings.prune_interval:
            self._tasks.append(asyncio.create_task(self.prune_forever()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.audit.stop()
        await self.mailer.stop()
        # requests are over: no verification is queued; wait for a running one in a thread
        await asyncio.to_thread(self.hashing.shutdown, wait=True, cancel_futures=True)
        await self.db.dispose()
        if self.db.ephemeral is not None:
            await self.db.ephemeral.redis.aclose()


def audit_writer_for(settings: Settings, engine: AsyncEngine) -> AuditWriter:
    """The audit writer on its own engine with one connection: its batches never wait for, or
    hold, a connection of the requests' pool (an in-memory SQLite database, which a second
    engine would not see, shares the requests' engine)."""
    url = settings.database_url
    own = not is_sqlite(url) or sqlite_file(url) is not None
    writer_engine = create_engine(url, pool_size=1, max_overflow=0) if own else engine
    return AuditWriter(
        writer_engine,
        interval=settings.audit_flush_interval,
        max_queue=settings.audit_queue_size,
        owns_engine=own,
    )


def invalidate(server: AuthorizationServer, kind: str, key: str) -> None:
    """Forget a cached API or client (``kind``: ``api`` or ``client``)."""
    if kind == "api":
        server.api_cache.invalidate(key)
    elif kind == "client":
        server.client_cache.invalidate(key)


def make_redis(settings: Settings) -> Redis | None:
    """The Redis client, when configured; connections are made lazily, so a server whose Redis
    is down starts, answers 503 where Redis is needed, and recovers when it returns."""
    if settings.redis_url is None:
        return None
    return redis_storage.connect(
        settings.redis_url.get_secret_value(), timeout=settings.redis_timeout
    )


def required_algs(settings: Settings) -> tuple[str, ...]:
    """Access tokens use ``signing_alg``; ID tokens RS256 by default (OpenID Connect Core
    §15.1), or ES256/EdDSA per client: every one of them has a key."""
    return tuple(dict.fromkeys((settings.signing_alg, "RS256", "ES256", "EdDSA")))


async def ensure_keys(engine: AsyncEngine, settings: Settings, clock: Clock) -> KeyRing:
    """Load the signing keys; generate one for each needed algorithm that has none active
    (under a lock, so that processes starting together do not each make their own)."""
    return await keystore.ensure_keys(
        engine, algs=required_algs(settings), kek=settings.kek(), clock=clock
    )


def document_fetcher(settings: Settings) -> HttpDocumentFetcher | None:
    """The Client ID Metadata Document fetcher the settings ask for (``None``: turned off)."""
    if not settings.client_metadata_documents:
        return None
    return HttpDocumentFetcher(
        allow_loopback=settings.client_metadata_allow_loopback,
        max_bytes=settings.client_metadata_max_bytes,
        timeout=settings.client_metadata_timeout,
        max_cache=settings.client_metadata_max_cache,
    )
