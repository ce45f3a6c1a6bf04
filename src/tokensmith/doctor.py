"""``tokensmith doctor``: check a configuration, and optionally a running deployment, against the
defaults that matter for security.

Each check either passes or yields a :class:`Finding` that says what is wrong and what to do.
The doctor only reads: it never migrates, creates a database file, generates a pepper or a key.

Configuration (settings from ``TOKENSMITH_*``):
    https issuer (cookies Secure and HSTS follow from it); key-encryption key set and valid;
    pepper set (not generated into the database); argon2id cost not below OWASP's minimum;
    ``log_level`` not DEBUG; ``forwarded_allow_ips`` not ``*``; ``/metrics`` not open to every
    address; access tokens at most 1 h and codes at most 10 min.
Stores:
    SQLite files not open to other users; database reachable and migrated to head; signing keys
    readable, a key active for every algorithm the server signs with, none stored in clear when
    a key-encryption key is set; Redis reachable when configured.
Deployment (``--url``):
    metadata reachable and its ``issuer`` equal to the configured one; HSTS present; ``/readyz``
    200; the server's ``Date`` within a minute of this machine's clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx

from tokensmith.settings import Settings

if TYPE_CHECKING:
    pass

#: OWASP Password Storage Cheat Sheet, argon2id: equivalent minimum (memory KiB, iterations)
#: pairs (parallelism 1); plus RFC 9106 §4's first recommended profile (2 GiB, t=1). RFC 9106's
#: second profile (64 MiB, t=3) and argon2-cffi's default satisfy the OWASP pairs.
ARGON2_MINIMUMS: tuple[tuple[int, int], ...] = (
    (2 * 1024 * 1024, 1),
    (47104, 1),
    (19456, 2),
    (12288, 3),
    (9216, 4),
    (7168, 5),
)
MAX_ACCESS_TOKEN_TTL = 3600
MAX_CODE_TTL = 600
MAX_CLOCK_SKEW = 60
MIN_PEPPER_LENGTH = 32
#: A public network larger than a /16 in metrics_allow_ips is not "our Prometheus server".
MAX_METRICS_NETWORK = 2**16
HTTP_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: which check found it, what is wrong, what to do about it."""

    check: str
    problem: str
    fix: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def check(self, name: str, finding: Finding | None) -> None:
        if finding is None:
            self.passed.append(name)
        else:
            self.findings.append(finding)

    def as_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "findings": [asdict(f) for f in self.findings],
                "passed": self.passed,
            },
            indent=2,
        )

    def as_text(self) -> str:
        lines = []
        for finding in self.findings:
            lines.append(f"FAIL {finding.check}: {finding.problem}")
            lines.append(f"     fix: {finding.fix}")
        for name in self.passed:
            lines.append(f"ok   {name}")
        count = len(self.findings)
        summary = "no findings" if not count else f"{count} finding{'s' if count > 1 else ''}"
        lines.append(f"tokensmith doctor: {summary}, {len(self.passed)} checks passed")
        return "\n".join(lines)


# -- configuration ---------------------------------------------------------------------------


def _issuer(s: Settings) -> Finding | None:
    if s.is_https:
        return None
    return Finding(
        "issuer-https",
        f"the issuer {s.issuer} is not https",
        "set TOKENSMITH_ISSUER to the server's public https URL (http is for local development "
        "only)",
    )


def _cookies(s: Settings) -> Finding | None:
    if s.is_https:
        return None
    return Finding(
        "cookies-secure",
        "session and CSRF cookies are sent without Secure and without the __Host- prefix, "
        "and no HSTS header is sent, because the issuer is http",
        "use an https issuer: Secure cookies and HSTS follow from it",
    )


def _kek(s: Settings) -> Finding | None:
    from tokensmith.core.keys import KeyLoadError

    if s.key_encryption_key is None:
        return Finding(
            "key-encryption-key",
            "no key-encryption key: private signing keys are stored in clear in the database",
            "set TOKENSMITH_KEY_ENCRYPTION_KEY to base64url of 32 random bytes, e.g. "
            'python -c "import secrets,base64;print(base64.urlsafe_b64encode('
            "secrets.token_bytes(32)).rstrip(b'=').decode())\"; then rotate the keys",
        )
    try:
        s.kek()
    except KeyLoadError as exc:
        return Finding(
            "key-encryption-key",
            f"the key-encryption key is unusable: {exc}",
            "set TOKENSMITH_KEY_ENCRYPTION_KEY to base64url of exactly 32 random bytes",
        )
    return None


def _pepper(s: Settings) -> Finding | None:
    if s.pepper is None:
        return Finding(
            "pepper",
            "no pepper configured: one is generated and kept in the database, next to the "
            "digests it protects",
            "set TOKENSMITH_PEPPER to a random secret of at least 32 characters kept outside "
            "the database (a secret store); note that changing the pepper invalidates "
            "existing client secrets and tokens",
        )
    if len(s.pepper.get_secret_value()) < MIN_PEPPER_LENGTH:
        return Finding(
            "pepper",
            f"the pepper is shorter than {MIN_PEPPER_LENGTH} characters",
            "use a random secret of at least 32 characters, e.g. python -c "
            '"import secrets;print(secrets.token_hex(32))"',
        )
    return None


def is_argon2_cost_sufficient(*, memory_kib: int, time_cost: int) -> bool:
    return any(memory_kib >= m and time_cost >= t for m, t in ARGON2_MINIMUMS)


def _argon2(s: Settings) -> Finding | None:
    memory, iterations = s.password_hash_memory_cost, s.password_hash_time_cost
    if is_argon2_cost_sufficient(memory_kib=memory, time_cost=iterations):
        return None
    return Finding(
        "argon2-cost",
        f"argon2id with {memory} KiB and {iterations} iteration(s) is below OWASP's minimum",
        "raise TOKENSMITH_PASSWORD_HASH_MEMORY_COST / _TIME_COST to at least 19456 KiB with 2 "
        "iterations (OWASP), or use the defaults (65536 KiB, 3 iterations, RFC 9106)",
    )


def _log_level(s: Settings) -> Finding | None:
    if s.log_level != "DEBUG":
        return None
    return Finding(
        "log-level",
        "log_level is DEBUG: debug logs may carry request details",
        "set TOKENSMITH_LOG_LEVEL=INFO",
    )


def _forwarded(s: Settings) -> Finding | None:
    addresses = [a.strip() for a in s.forwarded_allow_ips.split(",")]
    if "*" not in addresses:
        return None
    return Finding(
        "forwarded-allow-ips",
        "forwarded_allow_ips is '*': any client can set X-Forwarded-For and choose the address "
        "that rate limits, login throttling and audit events see",
        "set TOKENSMITH_FORWARDED_ALLOW_IPS to the addresses of your reverse proxies",
    )


def _metrics(s: Settings) -> Finding | None:
    if not s.metrics_enabled:
        return None
    # Every address (0.0.0.0/0, ::/0) or a public network too large to be one's own monitoring.
    wide = [
        str(n)
        for n in s.metrics_networks()
        if n.prefixlen == 0 or (n.is_global and n.num_addresses > MAX_METRICS_NETWORK)
    ]
    if not wide:
        return None
    return Finding(
        "metrics-access",
        f"/metrics (token volumes, error counts by client and endpoint) is open to "
        f"{', '.join(wide)} through metrics_allow_ips",
        "set TOKENSMITH_METRICS_ALLOW_IPS to the addresses of your Prometheus servers (default "
        "127.0.0.1,::1), or give them TOKENSMITH_METRICS_TOKEN as a bearer token",
    )


def _lifetimes(s: Settings) -> Finding | None:
    problems = []
    if s.access_token_ttl > MAX_ACCESS_TOKEN_TTL:
        problems.append(f"access tokens live {s.access_token_ttl} s (more than 1 hour)")
    if s.authorization_code_ttl > MAX_CODE_TTL:
        problems.append(f"codes live {s.authorization_code_ttl} s (more than 10 minutes)")
    if not problems:
        return None
    return Finding(
        "token-lifetimes",
        "; ".join(problems),
        "lower TOKENSMITH_ACCESS_TOKEN_TTL to at most 3600 and TOKENSMITH_AUTHORIZATION_CODE_TTL "
        "to at most 600 (refresh tokens keep sessions going)",
    )


def _metadata_loopback(s: Settings) -> Finding | None:
    if not (s.client_metadata_documents and s.client_metadata_allow_loopback):
        return None
    return Finding(
        "client-metadata-loopback",
        "client_metadata_allow_loopback is on: a client_id URL may make this server fetch from "
        "its own loopback addresses (development only)",
        "unset TOKENSMITH_CLIENT_METADATA_ALLOW_LOOPBACK in production",
    )


def _dev_outbox(s: Settings) -> Finding | None:
    if s.email_backend != "outbox":
        return None
    return Finding(
        "dev-outbox",
        f"email_backend is outbox: {s.outbox_path} lists every sign-up and password-reset link "
        "to whoever reaches the server (development only)",
        "set TOKENSMITH_EMAIL_BACKEND=smtp (or none) in production",
    )


CONFIG_CHECKS: tuple[tuple[str, Callable[[Settings], Finding | None]], ...] = (
    ("issuer-https", _issuer),
    ("cookies-secure", _cookies),
    ("key-encryption-key", _kek),
    ("pepper", _pepper),
    ("argon2-cost", _argon2),
    ("log-level", _log_level),
    ("forwarded-allow-ips", _forwarded),
    ("metrics-access", _metrics),
    ("token-lifetimes", _lifetimes),
    ("client-metadata-loopback", _metadata_loopback),
    ("dev-outbox", _dev_outbox),
)


def check_settings(settings: Settings, report: Report) -> None:
    for name, check in CONFIG_CHECKS:
        report.check(name, check(settings))


# -- stores ----------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__


async def check_database(settings: Settings, report: Report, *, now: int) -> None:
    """Reachable, migrated to head, signing keys usable. Reads only."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from tokensmith.core.keys import KeyLoadError, KeyRing
    from tokensmith.server.runtime import required_algs
    from tokensmith.storage.sqlalchemy import keystore, migrate
    from tokensmith.storage.sqlalchemy.engine import create_engine, sqlite_file

    unreachable = "database"
    try:
        url = make_url(settings.database_url)
    except Exception as exc:  # ArgumentError and friends: the URL itself is unusable
        report.check(unreachable, _db_finding(f"the database URL is unusable: {exc}"))
        return
    no_file = (
        _missing_sqlite_file(url.database or "") if url.get_backend_name() == "sqlite" else None
    )
    if no_file is not None:
        # Connecting would create an empty file: the doctor only reads.
        report.check(unreachable, _db_finding(f"the SQLite database {no_file} does not exist"))
        return
    path = sqlite_file(settings.database_url)
    if path is not None:
        report.check("database-file-mode", _file_mode(path))
    try:
        # secure_file=False: narrowing the file's mode is the server's job, the doctor only reads
        engine = create_engine(
            settings.database_url, pool_size=1, max_overflow=0, secure_file=False
        )
    except (SQLAlchemyError, ImportError) as exc:
        report.check(unreachable, _db_finding(f"cannot use the database: {_first_line(exc)}"))
        return
    try:
        try:
            current = await asyncio.wait_for(migrate.current_revision(engine), 10)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            report.check(unreachable, _db_finding(f"cannot reach the database: {_first_line(exc)}"))
            return
        report.check(unreachable, None)
        head = migrate.head_revision()
        report.check(
            "database-migrated",
            None
            if current == head
            else Finding(
                "database-migrated",
                f"the schema is at revision {current or 'none'}, not at {head}",
                "run `tokensmith db upgrade` (or start `tokensmith serve` with "
                "TOKENSMITH_AUTO_MIGRATE=true)",
            ),
        )
        if current != head:
            return
        try:
            kek = settings.kek()
        except KeyLoadError:
            kek = None  # reported by the key-encryption-key check
        try:
            keys = await keystore.load_keys(engine, kek=kek)
        except KeyLoadError as exc:
            report.check(
                "signing-keys",
                Finding(
                    "signing-keys",
                    f"the signing keys cannot be read: {exc}",
                    "configure the key-encryption key the keys were stored with",
                ),
            )
            return
        ring = KeyRing(keys)
        missing = [alg for alg in required_algs(settings) if not ring.has_active(alg, now)]
        report.check(
            "signing-keys",
            None
            if not missing
            else Finding(
                "signing-keys",
                f"no active, unexpired signing key for {', '.join(missing)}",
                "run `tokensmith keys rotate --alg ALG` for each (or start the server, which "
                "creates missing keys)",
            ),
        )
        if kek is not None:
            clear = await keystore.kids_in_clear(engine)
            report.check(
                "signing-keys-encrypted",
                None
                if not clear
                else Finding(
                    "signing-keys-encrypted",
                    f"{len(clear)} signing key(s) stored in clear although a key-encryption "
                    f"key is set: {', '.join(clear)}",
                    "rotate them (`tokensmith keys rotate --alg ALG`), then "
                    "`tokensmith keys prune` once the old keys expire",
                ),
            )
    finally:
        await engine.dispose()


def _file_mode(path: str) -> Finding | None:
    from tokensmith.storage.sqlalchemy.engine import sqlite_files

    opened = []
    for name in sqlite_files(path):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            opened.append(f"{name} ({mode:04o})")
    if not opened:
        return None
    return Finding(
        "database-file-mode",
        "the SQLite database (password hashes, token digests, signing keys) is open to other "
        f"users: {', '.join(opened)}",
        "chmod 600 the files (`tokensmith serve` narrows them at start), and keep the folder "
        "to the server's user",
    )


def _missing_sqlite_file(path: str) -> str | None:
    if path and path != ":memory:" and not os.path.exists(path):
        return path
    return None


def _db_finding(problem: str) -> Finding:
    return Finding(
        "database",
        problem,
        "check TOKENSMITH_DATABASE_URL and that the database server is up; create the schema "
        "with `tokensmith db upgrade`",
    )


async def check_redis(settings: Settings, report: Report) -> None:
    if settings.redis_url is None:
        return
    from redis.asyncio import Redis

    client = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    try:
        await asyncio.wait_for(client.ping(), settings.redis_timeout + 1)
    except Exception as exc:  # connection refused, auth, timeout: all mean "not reachable"
        report.check(
            "redis",
            Finding(
                "redis",
                f"Redis is configured but not reachable: {type(exc).__name__}: {_first_line(exc)}",
                "check TOKENSMITH_REDIS_URL and that Redis is up (or unset it to keep "
                "short-lived state in SQL)",
            ),
        )
    else:
        report.check("redis", None)
    finally:
        await client.aclose()


# -- deployment ------------------------------------------------------------------------------


async def check_deployment(
    settings: Settings,
    report: Report,
    *,
    url: str,
    now: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """What a running server at ``url`` answers: metadata, HSTS, readiness, clock."""
    base = url.rstrip("/")
    async with httpx.AsyncClient(
        transport=transport, timeout=HTTP_TIMEOUT, follow_redirects=False
    ) as client:
        try:
            metadata = await client.get(base + "/.well-known/openid-configuration")
        except httpx.HTTPError as exc:
            report.check(
                "deployment",
                Finding(
                    "deployment",
                    f"{base} is not reachable: {type(exc).__name__}: {exc}",
                    "check the URL, DNS, TLS and that the server is running",
                ),
            )
            return
        report.check("deployment", None)
        report.check("metadata-issuer", _metadata_issuer(settings, metadata))
        report.check("hsts", _hsts(metadata))
        report.check("clock", _clock(metadata, now))
        try:
            ready = await client.get(base + "/readyz")
        except httpx.HTTPError as exc:
            report.check(
                "readyz",
                Finding("readyz", f"/readyz failed: {exc}", "check the server's logs"),
            )
            return
        report.check(
            "readyz",
            None
            if ready.status_code == 200
            else Finding(
                "readyz",
                f"/readyz answered {ready.status_code}: {ready.text[:200]}",
                "a store the server needs is down: see the checks in the body and the logs",
            ),
        )


def _metadata_issuer(settings: Settings, response: httpx.Response) -> Finding | None:
    fix = (
        "point --url at the server configured here, or set TOKENSMITH_ISSUER to the URL that "
        "clients use"
    )
    if response.status_code != 200:
        return Finding(
            "metadata-issuer",
            f"the metadata document answered {response.status_code}",
            fix,
        )
    try:
        issuer = response.json().get("issuer")
    except (ValueError, AttributeError):
        issuer = None
    if issuer != settings.issuer:
        return Finding(
            "metadata-issuer",
            f"the server's metadata says issuer {issuer!r}, the configuration {settings.issuer!r}",
            fix,
        )
    return None


def _hsts(response: httpx.Response) -> Finding | None:
    value = response.headers.get("strict-transport-security", "")
    if "max-age=" in value.lower() and "max-age=0" not in value.lower().replace(" ", ""):
        return None
    return Finding(
        "hsts",
        "the server sends no Strict-Transport-Security header",
        "serve over https with an https issuer (tokensmith then sends HSTS), and make sure the "
        "reverse proxy does not strip it",
    )


def _clock(response: httpx.Response, now: float) -> Finding | None:
    date = response.headers.get("date")
    if date is None:
        return Finding(
            "clock",
            "the server sent no Date header, its clock cannot be compared",
            "let the server (or proxy) send Date",
        )
    try:
        server_time = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Finding("clock", f"the server's Date header {date!r} is malformed", "fix the proxy")
    skew = server_time - now
    if abs(skew) <= MAX_CLOCK_SKEW:
        return None
    return Finding(
        "clock",
        f"the server's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} this "
        "machine's: tokens and codes expire at the wrong time",
        "synchronise the clocks with NTP (chrony, systemd-timesyncd)",
    )


# -- all together ----------------------------------------------------------------------------


async def diagnose(
    settings: Settings,
    *,
    url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Every check: the configuration, its stores and, with ``url``, the running server."""
    report = Report()
    check_settings(settings, report)
    await check_database(settings, report, now=int(clock()))
    await check_redis(settings, report)
    if url is not None:
        await check_deployment(settings, report, url=url, now=clock(), transport=transport)
    return report
