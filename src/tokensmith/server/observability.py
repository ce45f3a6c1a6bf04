"""Operations: request ids, structured JSON logs, Prometheus metrics, health and readiness.

- Every response carries ``X-Request-ID`` (the caller's, when it is a short safe token, else a
  new one); log records made while serving the request carry it too.
- ``/metrics``: requests by route and status, latency, tokens issued by grant type, errors by
  OAuth error code, audit events written and lost, password operations pending and refused.
  Each app has its own registry (no global state); with several worker processes, each process
  reports its own counters. Only :class:`MetricsAccess` callers read it: a direct connection
  from ``metrics_allow_ips`` (loopback by default) or a request with the ``metrics_token``
  bearer token; everyone else gets the 404 of an unknown path.
- ``/healthz``: the process answers. ``/readyz``: the database (and Redis, when configured)
  answer too, else 503.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import os
import random
import re
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from sqlalchemy import text
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.server.middleware import SecurityHeaders
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy.engine import RetryingConnection

_ids = random.Random()  # noqa: S311 - ids, not secrets; its own, which no `random.seed` resets
if hasattr(os, "register_at_fork"):  # a forked worker does not repeat its parent's ids
    os.register_at_fork(after_in_child=_ids.seed)
_random_bits = _ids.getrandbits
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    """A fresh request id: 16 hex digits (also those of the answers the HTTP protocols write
    themselves, :mod:`tokensmith.server.protocols`). An id that ties log lines to an answer,
    not a secret: 64 bits from a Mersenne Twister of its own (seeded from the OS, and again in
    a forked child), a third of the cost of ``secrets.token_hex(8)``'s system call."""
    return f"{_random_bits(64):016x}"


class AuditCounts(Protocol):
    dropped: int
    written: int

    @property
    def queued(self) -> int: ...


class HashingCounts(Protocol):
    refused: int

    @property
    def pending(self) -> int: ...


class _AuditCollector(Collector):
    """The audit writer's and the password-hashing pool's counters, read when ``/metrics`` is
    scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        hashing = self.metrics.hashing
        if hashing is not None:
            yield CounterMetricFamily(
                "tokensmith_password_operations_refused",
                "Password operations (logins, sign-ups, resets, password changes) refused with "
                "503 because the hashing pool's queue was full (password_hash_queue).",
                value=hashing.refused,
            )
            yield GaugeMetricFamily(
                "tokensmith_password_operations_pending",
                "Password operations running or waiting on the hashing pool.",
                hashing.pending,
            )
        audit = self.metrics.audit
        if audit is None:
            return
        yield CounterMetricFamily(
            "tokensmith_audit_events_dropped",
            "Audit events lost: dropped from the full queue while the database did not take "
            "them, or not stored before shutdown.",
            value=audit.dropped,
        )
        yield CounterMetricFamily(
            "tokensmith_audit_events_written", "Audit events stored.", value=audit.written
        )
        yield GaugeMetricFamily(
            "tokensmith_audit_events_queued", "Audit events waiting to be stored.", audit.queued
        )


METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}
)
"""The method labels of the request counter; any other method is counted as 'other' (h11
accepts any token as a method: a client inventing methods must not grow the series)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LE = (*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf")
"""The buckets' ``le`` labels, written as ``prometheus_client`` writes them."""


class _HttpCollector(Collector):
    """The per-request counters (requests, their latency, tokens issued) as Prometheus metric
    families, built when ``/metrics`` is scraped: the same names, labels, buckets and
    ``_created`` series as ``prometheus_client``'s ``Counter`` and ``Histogram``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "tokensmith_http_requests",
            "HTTP requests by route, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in list(m.request_counts.items()):
            created = m.created[("requests", route, method, status)]
            requests.add_metric([route, method, str(status)], count, created=created)
        yield requests
        latency = HistogramMetricFamily(
            "tokensmith_http_request_seconds", "Time to answer, by route.", labels=["route"]
        )
        for route, counts in list(m.latency_counts.items()):
            cumulative, buckets = 0.0, []
            for le, hits in zip(_LE, counts, strict=False):  # counts ends with the sum
                cumulative += hits
                buckets.append((le, cumulative))
            latency.add_metric([route], buckets, counts[-1])
            created = m.created[("latency", route)]
            latency.samples.append(
                Sample("tokensmith_http_request_seconds_created", {"route": route}, created)
            )
        yield latency
        tokens = CounterMetricFamily(
            "tokensmith_tokens_issued", "Token responses by grant type.", labels=["grant_type"]
        )
        for grant_type, count in list(m.token_counts.items()):
            created = m.created[("tokens", grant_type)]
            tokens.add_metric([grant_type], count, created=created)
        yield tokens


class Metrics:
    """The process's metrics. What every request counts (requests, latency, tokens issued) is
    kept in plain dictionaries, updated on the event loop's thread and turned into metric
    families only when scraped (``_HttpCollector``): ``prometheus_client``'s children take a
    lock and check their arguments on every ``inc`` and ``observe`` (~1.5 µs a request)."""

    def __init__(self, routes: frozenset[str]) -> None:
        self.routes = routes
        self.request_counts: dict[tuple[str, str, int], int] = {}
        self.latency_counts: dict[str, list[float]] = {}
        """Per route: the count of each bucket (not cumulative; the last is +Inf), then the sum."""
        self.token_counts: dict[str, int] = {}
        self.created: dict[tuple[object, ...], float] = {}
        """When each series was first counted (its ``_created`` sample)."""
        self.registry = CollectorRegistry()
        self.errors = Counter(
            "tokensmith_oauth_errors",
            "OAuth errors answered, by error code.",
            ["error"],
            registry=self.registry,
        )

        self.audit: AuditCounts | None = None
        """The process's audit writer (set by the lifespan): its losses are reported."""
        self.hashing: HashingCounts | None = None
        """The process's password hasher (set by the lifespan): its refusals are reported."""
        self.registry.register(_HttpCollector(self))
        self.registry.register(_AuditCollector(self))

    def route(self, path: str) -> str:
        """A bounded label: known endpoint paths, everything else is 'other'."""
        return path if path in self.routes else "other"

    def answered(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (labels: a known route or 'other', a
        standard method or 'other', the status the server sent)."""
        route = path if path in self.routes else "other"
        key = (route, method if method in METHODS else "other", status)
        count = self.request_counts.get(key)
        if count is None:
            self.created[("requests", *key)] = time.time()
            count = 0
        self.request_counts[key] = count + 1
        counts = self.latency_counts.get(route)
        if counts is None:
            self.created[("latency", route)] = time.time()
            counts = self.latency_counts[route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def token_issued(self, grant_type: str) -> None:
        """Count one token response (``grant_type``: a registered grant, so a bounded set)."""
        count = self.token_counts.get(grant_type)
        if count is None:
            self.created[("tokens", grant_type)] = time.time()
            count = 0
        self.token_counts[grant_type] = count + 1


class Observability:
    """Pure ASGI middleware, the server's outermost layer: request id, metrics and the security
    headers (:class:`~tokensmith.server.middleware.SecurityHeaders`, then ``X-Request-ID``), in
    one coroutine and one ``send`` wrapper: each layer of its own cost a token request about
    4 µs of server CPU (issue 17)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, https: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.security_headers = SecurityHeaders(https=https).headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if incoming and _SAFE_ID.fullmatch(incoming) else new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        security_headers = self.security_headers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # a new list (never the response's own), the request id last
                headers = security_headers(status, message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # the path below the root path (a prefix a proxy serves the server under), as the
            # router matches it: the metrics' route label is the route's, with or without one
            path = get_route_path(scope) if scope.get("root_path") else scope["path"]
            self.metrics.answered(path, scope["method"], status, time.perf_counter() - started)
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(*, level: str, fmt: str) -> None:
    """Called once by ``tokensmith serve`` (never at import, never per request)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger("tokensmith")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    rt = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        async with RetryingConnection(rt.db.engine) as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = type(exc).__name__
    if rt.db.ephemeral is not None:
        try:
            await rt.db.ephemeral.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    body = json.dumps({"status": "ok" if ready else "unavailable", "checks": checks})
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


#: Headers a reverse proxy adds: their presence means the connection's peer is a proxy, not the
#: caller, so the peer's address says nothing about who asks.
RELAY_HEADERS = frozenset({"x-forwarded-for", "forwarded", "x-real-ip"})


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """Who may read ``/metrics``: the counters show token volumes, error rates and which
    endpoints are used, which is nobody else's business.

    A request is let in when it comes over a direct connection (no proxy header) from an address
    in ``networks`` — ``request.client``, which uvicorn rewrites from ``X-Forwarded-For`` only
    for the proxies of ``forwarded_allow_ips`` — or carries ``Authorization: Bearer <token>``
    with the configured token (RFC 6750 §2.1), compared in constant time."""

    networks: tuple[IPv4Network | IPv6Network, ...]
    token_digest: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAccess:
        token = settings.metrics_token
        return cls(
            networks=settings.metrics_networks(),
            token_digest=_digest(token.get_secret_value()) if token is not None else None,
        )

    def allows(self, request: Request) -> bool:
        return self.is_token_valid(request) or self.is_address_allowed(request)

    def is_token_valid(self, request: Request) -> bool:
        if self.token_digest is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        # Digests of equal length: the comparison time says nothing about the token's length.
        return hmac.compare_digest(_digest(given.strip()), self.token_digest)

    def is_address_allowed(self, request: Request) -> bool:
        if request.client is None or not self.networks:
            return False
        if any(name.lower() in RELAY_HEADERS for name in request.headers):
            return False  # relayed: the address is the proxy's (a proxy on this host is loopback)
        try:
            address = ip_address(request.client.host.partition("%")[0])
        except ValueError:  # a Unix socket path or a test client's name
            return False
        candidates = [address]
        if address.version == 6 and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)  # ::ffff:127.0.0.1 on a dual-stack socket
        return any(a in network for a in candidates for network in self.networks)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def metrics_endpoint(request: Request) -> Response:
    access: MetricsAccess = request.app.state.metrics_access
    if not access.allows(request):
        # The answer of a path that does not exist: nothing tells a scanner that metrics are
        # here, or invites it to guess the token (a 401 or 403 would).
        raise HTTPException(status_code=404)
    metrics: Metrics = request.app.state.metrics
    return Response(
        generate_latest(metrics.registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
