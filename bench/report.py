"""The Markdown table, the ratios, the targets of issue 17, and the chart of a results file.

.venv/bin/python -m bench.report bench/results/latest.json [--chart docs/performance.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

BARE = "ceiling bare ASGI"
NODE_ES256 = "node-oidc-provider cc JWT ES256"
CC_SQLITE = "tokensmith cc JWT ES256 SQLite"
CC_PG = "tokensmith cc JWT ES256 PostgreSQL"
CODE_PG = "tokensmith code exchange PostgreSQL"
OPEN = "route unprotected"
PROTECTED = "route protected (reused token)"
FLOOR = "route FastAPI floor (trivial dependency)"
PROTECTED_DEPENDENCY = "route protected, FastAPI's resolution (reused token)"
INPROC_OPEN = "route unprotected (ASGI)"
INPROC_PROTECTED = "route protected, reused token (ASGI)"
REFRESH_PG = "tokensmith refresh rotation PostgreSQL"
RAW = "pyjwt raw jwt.decode"
FRESH = "tokensmith fresh (no cache)"


def _rps(results: dict[str, Any], name: str) -> float | None:
    row = results["scenarios"].get(name)
    return float(row["rps"]) if row else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _paired(results: dict[str, Any], a: str, b: str) -> float | None:
    """The median over rounds of ``a / b`` measured in the same round (interleaved), which
    survives load that changes during a run better than a ratio of medians."""
    rows = results["scenarios"]
    if a not in rows or b not in rows:
        return None
    pairs = list(zip(rows[a].get("rounds_rps", []), rows[b].get("rounds_rps", []), strict=False))
    if not pairs:
        return _ratio(_rps(results, a), _rps(results, b))
    return statistics.median(x / y for x, y in pairs if y)


def _paired_cpu(results: dict[str, Any], a: str, b: str) -> float | None:
    """Like :func:`_paired`, by the server's CPU time per request: the median over rounds of
    ``b``'s µs per request over ``a``'s (a throughput ratio, as if each had the core alone)."""
    rows = results["scenarios"]
    if a not in rows or b not in rows:
        return None
    pairs = zip(rows[a].get("rounds_cpu_us", []), rows[b].get("rounds_cpu_us", []), strict=False)
    ratios = [y / x for x, y in pairs if x]
    return statistics.median(ratios) if ratios else None


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of issue 17; met None when not measured."""
    rows: list[tuple[str, str, bool | None]] = []

    def add(label: str, ratio: float | None, goal: float, what: str) -> None:
        shown = f"{ratio:.2f} x {what}" if ratio is not None else "not measured"
        rows.append((label, shown, None if ratio is None else ratio >= goal))

    for database, cc in (("SQLite", CC_SQLITE), ("PostgreSQL", CC_PG)):  # 17.1 asks for both
        add(
            f"cc JWT ES256 {database} ≥ 1.5 x node-oidc-provider ES256",
            _paired(results, cc, NODE_ES256),
            1.5,
            "node",
        )
        add(f"cc JWT ES256 {database} ≥ 60 % of bare ASGI", _paired(results, cc, BARE), 0.6, "bare")
    add(
        "code exchange PostgreSQL ≥ 25 % of cc PostgreSQL",
        _paired(results, CODE_PG, CC_PG),
        0.25,
        "cc",
    )
    add(
        "refresh PostgreSQL ≥ 25 % of cc PostgreSQL",
        _paired(results, REFRESH_PG, CC_PG),
        0.25,
        "cc",
    )
    inproc = results.get("inprocess", {})
    add(
        "validator (fresh tokens) ≥ 90 % of PyJWT decode",
        _ratio(inproc.get(FRESH), inproc.get(RAW)),
        0.9,
        "PyJWT",
    )
    add(
        "protected route (reused token) ≥ 90 % of unprotected",
        _paired(results, PROTECTED, OPEN),
        0.9,
        "unprotected",
    )
    by_cpu = _paired_cpu(results, PROTECTED, OPEN)
    if by_cpu is not None:  # the same pair by server CPU per request: context, not the target
        label = "(the same, by server CPU time per request)"
        rows.append((label, f"{by_cpu:.2f} x unprotected", None))
    inproc_ratio = _ratio(inproc.get(INPROC_PROTECTED), inproc.get(INPROC_OPEN))
    if inproc_ratio is not None:  # the same pair in-process, without uvicorn: context
        label = "(the same in-process, over ASGI without a network)"
        rows.append((label, f"{inproc_ratio:.2f} x unprotected", None))
    context = [
        (FLOOR, "(FastAPI's floor: a dependency that does nothing)"),
        (PROTECTED_DEPENDENCY, "(the same dependency solved by FastAPI, without BearerRoute)"),
    ]
    for name, label in context:  # what FastAPI's own resolution costs: not targets
        ratio = _paired(results, name, OPEN)
        if ratio is not None:
            cpu = _paired_cpu(results, name, OPEN)
            by = "" if cpu is None else f"; {cpu:.2f} x by CPU time"
            rows.append((label, f"{ratio:.2f} x unprotected{by}", None))
    for name, row in results.get("logins", {}).get("cases", {}).items():
        ratio = row["p99_ratio"]
        in_flight = results["logins"]["in_flight"]
        rows.append(
            (
                f"cc p99 with {in_flight} logins in flight ≤ 2 x idle p99 ({name.split()[-1]})",
                "not measured" if ratio is None else f"{ratio:.2f} x idle",
                None if ratio is None else ratio <= 2.0,
            )
        )
    rss = {k: v for k, v in results.get("rss_mb", {}).items() if k.startswith("ts-")}
    if rss:
        worst = max(rss.values())
        rows.append(("one server process < 150 MB RSS", f"{worst:.0f} MB (largest)", worst < 150))
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    bare = _rps(results, BARE)
    node = _rps(results, NODE_ES256)
    load = meta.get("load_average")
    lines = [
        f"Run {meta['date']} on {meta['cpu']} ({meta['machine']}); Python {meta['python']}; "
        f"median of {meta['rounds']} interleaved rounds of {meta['duration_s']:g} s, "
        f"{meta['connections']} connections, server on CPU 0, wrk on CPU 1"
        + (f"; load average at the end {' / '.join(map(str, load))}" if load else "")
        + (
            f"; logins scenario: windows of {meta['logins_duration_s']:g} s."
            if results.get("logins") and meta.get("logins_duration_s")
            else "."
        ),
    ]
    if results["scenarios"]:
        lines += [
            "",
            "| scenario | req/s | p50 ms | p99 ms | errors | server CPU µs/req "
            "| vs bare ASGI | vs node ES256 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    for name, row in results["scenarios"].items():
        vs_bare = _ratio(row["rps"], bare)
        vs_node = _ratio(row["rps"], node)
        lines.append(
            f"| {name} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['errors']} | {_num(row.get('cpu_us'))} | {_pct(vs_bare)} | {_times(vs_node)} |"
        )
    lines += ab_markdown(results)
    lines += logins_markdown(results.get("logins"))
    lines += scale_markdown(results)
    inproc = results.get("inprocess", {})
    if inproc:
        raw = inproc.get(RAW)
        lines += ["", "| in-process validation (ES256) | validations/s | vs PyJWT decode |"]
        lines += ["| --- | ---: | ---: |"]
        for name, rate in inproc.items():
            if name.startswith("route"):
                continue
            lines.append(f"| {name} | {rate:,.0f} | {_pct(_ratio(rate, raw))} |")
        routes = {name: rate for name, rate in inproc.items() if name.startswith("route")}
        if routes:
            open_rate = routes.get(INPROC_OPEN)
            lines += ["", "| in-process route (ASGI, no network) | requests/s | vs unprotected |"]
            lines += ["| --- | ---: | ---: |"]
            for name, rate in routes.items():
                lines.append(f"| {name} | {rate:,.0f} | {_pct(_ratio(rate, open_rate))} |")
    rss = results.get("rss_mb", {})
    if rss:
        lines += ["", "| process | RSS after the run (MB) |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.0f} |" for k, v in rss.items()]
    costs = results.get("cost_model")
    if costs:
        from bench.cost_model import markdown as cost_markdown

        lines += ["", "Per request, counted in-process (warm caches unless noted):", ""]
        lines += cost_markdown(costs).splitlines()
    lines += peer_markdown(results)
    lines += ["", "Targets: ratios are medians over rounds of the two figures of the same round."]
    lines += ["", "| target (issue 17) | measured | met |", "| --- | --- | --- |"]
    for label, shown, met in targets(results):
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {label} | {shown} | {verdict} |")
    return "\n".join(lines) + "\n"


DOT = "django-oauth-toolkit"
# (work, tokensmith opaque, tokensmith JWT, django-oauth-toolkit): PostgreSQL, one process each
PEER_ROWS = [
    (
        "client_credentials",
        "tokensmith cc opaque PostgreSQL",
        "tokensmith cc JWT ES256 PostgreSQL",
        f"{DOT} cc",
    ),
    (
        "code exchange with an id_token (RS256)",
        "tokensmith code exchange id_token opaque PostgreSQL",
        "tokensmith code exchange id_token PostgreSQL",
        f"{DOT} code exchange id_token RS256",
    ),
    (
        "code exchange without an id_token",
        "tokensmith code exchange opaque PostgreSQL",
        "tokensmith code exchange PostgreSQL",
        f"{DOT} code exchange",
    ),
    (
        "refresh rotation",
        "tokensmith refresh rotation opaque PostgreSQL",
        "tokensmith refresh rotation PostgreSQL",
        f"{DOT} refresh rotation",
    ),
]
DOT_DEFAULT_HASHER = f"{DOT} cc (default hasher: PBKDF2 1,000,000 iterations)"


def peer_markdown(results: dict[str, Any]) -> list[str]:
    """tokensmith against django-oauth-toolkit, like for like (issue 17, item 5): opaque stored
    access tokens on both sides, our JWT figure beside; target ≥ 2 x DOT in every scenario."""
    rows = results["scenarios"]
    if not any(dot in rows for *_, dot in PEER_ROWS):
        return []
    lines = [
        "",
        "tokensmith vs django-oauth-toolkit (PostgreSQL, one process each; DOT's client secrets "
        "hashed with one PBKDF2 iteration; ratios paired by round):",
        "",
        "| work | tokensmith opaque | tokensmith JWT | DOT | opaque / DOT | JWT / DOT | "
        "≥ 2 x DOT (opaque) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for work, opaque, jwt, dot in PEER_ROWS:
        ratio = _paired(results, opaque, dot)
        jwt_ratio = _paired(results, jwt, dot)
        met = "n/a" if ratio is None else ("yes" if ratio >= 2.0 else "**no**")
        lines.append(
            f"| {work} | {_num(_rps(results, opaque))} | {_num(_rps(results, jwt))} | "
            f"{_num(_rps(results, dot))} | {_times(ratio)} | {_times(jwt_ratio)} | {met} |"
        )
    default = _rps(results, DOT_DEFAULT_HASHER)
    if default is not None:
        lines += [
            "",
            f"DOT with its default client-secret hasher (Django's PBKDF2, 1,000,000 "
            f"iterations, every client authentication): client_credentials {default:,.1f} req/s.",
        ]
    return lines


AB_PREFIX = "A/B tree: "
"""Scenarios of ``bench.run --ab-tree``: ``AB_PREFIX + <scenario>``, served by the other tree."""


def ab_markdown(results: dict[str, Any]) -> list[str]:
    """``--ab-tree`` runs: this tree against the other, per scenario; the ratio is the median
    of the per-round ratios (each pair measured one after the other)."""
    rows = results["scenarios"]
    pairs = [(n[len(AB_PREFIX) :], n) for n in rows if n.startswith(AB_PREFIX)]
    if not pairs:
        return []
    tree = results["meta"].get("ab_tree") or "the A/B tree"
    lines = [
        "",
        f"A/B: this tree against `{tree}` (median req/s; ratio: median of the per-round ratios)",
        "",
        "| scenario | A/B tree req/s | this tree req/s | this / A/B tree | rounds (this / A/B) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, twin in pairs:
        if name not in rows:
            continue
        ratio = _paired(results, name, twin)
        rounds = " ".join(
            f"{a:,.0f}/{b:,.0f}"
            for a, b in zip(
                rows[name].get("rounds_rps", []), rows[twin].get("rounds_rps", []), strict=False
            )
        )
        lines.append(
            f"| {name} | {rows[twin]['rps']:,.0f} | {rows[name]['rps']:,.0f} | "
            f"{_times(ratio)} | {rounds} |"
        )
    return lines


def logins_markdown(logins: dict[str, Any] | None) -> list[str]:
    """The logins scenario: ``client_credentials`` idle and under logins, and the login rate
    against the raw argon2 rate (``bench/logins.py``)."""
    if not logins or not logins.get("cases"):
        return []
    cost, workers, raw = logins["cost"], logins["workers"], logins["raw"]
    raw_1, raw_n = raw.get("1"), raw.get(str(workers))
    lines = [
        "",
        f"Logins never starve the token endpoint: `client_credentials` (wrk) idle, then while "
        f"{logins['in_flight']} password logins through the forms stay in flight; argon2id "
        f"t={cost['time_cost']}, m={cost['memory_cost_kib']} KiB, p={cost['parallelism']} "
        f"(the server's default), {workers} hashing thread{'s' if workers != 1 else ''}. "
        f"Raw argon2 verifications/s on the server's CPU: {_num(raw_1)} on 1 thread, "
        f"{_num(raw_n)} on {workers}.",
        "",
        "| database | cc req/s idle / under logins | cc p50 ms idle / under | "
        "cc p99 ms idle / under | p99 ratio | logins/s in the window / overall | "
        f"overall vs raw 1 thread | overall vs raw {workers} threads | errors cc / logins |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in logins["cases"].items():
        idle, loaded = row["idle"], row["loaded"]
        lines.append(
            f"| {name.split()[-1]} | {_num(idle['rps'])} / {_num(loaded['rps'])} | "
            f"{idle['p50_ms']:.1f} / {loaded['p50_ms']:.1f} | "
            f"{idle['p99_ms']:.1f} / {loaded['p99_ms']:.1f} | {_times(row['p99_ratio'])} | "
            f"{row['logins_per_s']:.2f} / {row.get('overall_per_s') or 0:.2f} | "
            f"{_pct(row['vs_raw_1'])} | "
            f"{_pct(row['vs_raw_workers'])} | {row['cc_errors']} / {row['login_errors']} |"
        )
    return lines


SCALE_COUNTS = (
    ("redis commands", "Redis commands"),
    ("redis evalsha", "of them EVALSHA"),
    ("pg transactions", "PG transactions"),
    ("pg tup_inserted", "rows inserted"),
    ("pg tup_updated", "rows updated"),
    ("pg tup_deleted", "rows deleted"),
    ("pg tup_fetched", "rows fetched"),
)


def scale_markdown(results: dict[str, Any]) -> list[str]:
    """``serve --workers 1`` against ``--workers 2`` (PostgreSQL + Redis), and the shared
    state each request cost, counted on the servers' side (``bench/scale.py``)."""
    rows = {n: r for n, r in results["scenarios"].items() if r.get("group") == "scale"}
    if not rows:
        return []
    lines = [
        "",
        "Scale-out: `tokensmith serve` with 1 process (CPU 0) and `--workers 2` (CPUs 0 and 1, "
        "the second shared with wrk), PostgreSQL + Redis; per request, from Redis `INFO "
        "commandstats` and PostgreSQL `pg_stat_database` (every process's work, the audit "
        "writer's included):",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | vs 1 process | "
        + " | ".join(label for _, label in SCALE_COUNTS)
        + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(SCALE_COUNTS),
    ]
    for name, row in rows.items():
        single = results["scenarios"].get(name.rsplit(",", 1)[0] + ", 1 process")
        counts = row.get("counts", {})
        cells = " | ".join(f"{counts.get(key, 0):g}" for key, _ in SCALE_COUNTS)
        lines.append(
            f"| {name} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['errors']} | {_times(_ratio(row['rps'], single and single['rps']))} | "
            f"{cells} |"
        )
    commands = sorted(
        {
            k
            for r in rows.values()
            for k, v in r.get("counts", {}).items()
            if v and k.startswith("redis ") and k != "redis commands"
        }
    )
    if commands:
        lines += ["", "Redis commands per request, by command: "]
        lines[-1] += "; ".join(
            f"{name}: "
            + ", ".join(
                f"{c.removeprefix('redis ')} {r['counts'][c]:g}"
                for c in commands
                if r.get("counts", {}).get(c)
            )
            for name, r in rows.items()
        )
    return lines


def _num(value: float | None) -> str:
    return (
        f"{value:,.1f}"
        if value is not None and value < 100
        else (f"{value:,.0f}" if value is not None else "-")
    )


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def _times(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


COLORS = {
    "client_credentials": "#2b6cb0",
    "authorization_code": "#2f855a",
    "refresh_token": "#38a169",
    "ceiling": "#a0aec0",
    "node-oidc-provider": "#dd6b20",
    "resource": "#805ad5",
}


def chart(results: dict[str, Any], path: Path) -> None:
    """A horizontal bar chart of requests/s per scenario (needs matplotlib: the bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(results["scenarios"].items())
    if not rows:  # e.g. --only logins: nothing to chart
        return
    names = [name for name, _ in rows][::-1]
    rates = [row["rps"] for _, row in rows][::-1]
    colors = [COLORS.get(row["group"], "#4a5568") for _, row in rows][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.4))
    bars = ax.barh(names, rates, color=colors)
    ax.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], padding=3, fontsize=8)
    ax.set_xlabel("requests/s (median of interleaved rounds; one server process on one core)")
    meta = results["meta"]
    ax.set_title(f"tokensmith benchmarks, {meta['date'][:10]}", fontsize=11)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(0, max(rates) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("results", type=Path)
    parser.add_argument("--chart", type=Path)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    print(markdown(results))
    if args.chart:
        chart(results, args.chart)


if __name__ == "__main__":
    main()
