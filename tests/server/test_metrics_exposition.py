"""The per-request counters are plain dictionaries turned into metric families when scraped
(``observability._HttpCollector``): what ``/metrics`` shows must be what ``prometheus_client``'s
own ``Counter`` and ``Histogram`` would show for the same requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tokensmith.server.observability import LATENCY_BUCKETS, Metrics

ANSWERS = [
    ("/token", "POST", 200, 0.003),
    ("/token", "POST", 200, 0.001),  # on a bucket's bound: counted in that bucket
    ("/token", "POST", 400, 0.0004),
    ("/jwks.json", "GET", 200, 0.0025),
    ("/nowhere", "GET", 404, 7.0),  # past the last bucket; an unknown path is 'other'
]
GRANTS = ["client_credentials", "client_credentials", "refresh_token"]


def _without_created(text: bytes) -> list[str]:
    """The exposition's lines, without the ``_created`` series (their values are the times the
    series were first counted, which differ between two registries)."""
    return sorted(line for line in text.decode().splitlines() if "_created" not in line)


def test_the_exposition_is_prometheus_clients() -> None:
    metrics = Metrics(frozenset({"/token", "/jwks.json"}))
    reference = CollectorRegistry()
    requests = Counter(
        "tokensmith_http_requests",
        "HTTP requests by route, method and status.",
        ["route", "method", "status"],
        registry=reference,
    )
    latency = Histogram(
        "tokensmith_http_request_seconds",
        "Time to answer, by route.",
        ["route"],
        registry=reference,
        buckets=LATENCY_BUCKETS,
    )
    tokens = Counter(
        "tokensmith_tokens_issued",
        "Token responses by grant type.",
        ["grant_type"],
        registry=reference,
    )
    Counter(
        "tokensmith_oauth_errors",
        "OAuth errors answered, by error code.",
        ["error"],
        registry=reference,
    )
    for path, method, status, seconds in ANSWERS:
        metrics.answered(path, method, status, seconds)
        route = metrics.route(path)
        requests.labels(route, method, str(status)).inc()
        latency.labels(route).observe(seconds)
    for grant in GRANTS:
        metrics.token_issued(grant)
        tokens.labels(grant).inc()

    ours = generate_latest(metrics.registry)
    theirs = generate_latest(reference)
    assert _without_created(ours) == _without_created(theirs)
    # and a _created series for each counted series, as prometheus_client writes them
    created = sorted(
        line.rsplit(" ", 1)[0] for line in ours.decode().splitlines() if "_created{" in line
    )
    expected = sorted(
        line.rsplit(" ", 1)[0] for line in theirs.decode().splitlines() if "_created{" in line
    )
    assert created == expected


def test_a_client_inventing_methods_does_not_grow_the_series() -> None:
    """h11 accepts any token as a method: every unknown one is counted as 'other'."""
    metrics = Metrics(frozenset({"/token"}))
    for n in range(1000):
        metrics.answered("/token", f"INVENTED{n}", 405, 0.001)
    metrics.answered("/token", "POST", 200, 0.001)
    assert sorted(metrics.request_counts) == [("/token", "POST", 200), ("/token", "other", 405)]
    assert metrics.request_counts[("/token", "other", 405)] == 1000
    assert b'method="other"' in generate_latest(metrics.registry)
