"""The per-check series, counted by the event loop without prometheus_client's locks, read
exactly as prometheus_client's own Counter and Histogram would write them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from probe_agent.metrics import _DURATION_BUCKETS, _LATENESS_BUCKETS, AgentMetrics

# Bucket bounds themselves, values between them, zero, negatives and past the last bound.
VALUES = [0.0, 0.01, 0.0100001, 0.025, 0.3, 1.0, 2.49, 5.5, 60.0, 61.0, 400.0, -1.0]


def series(registry: CollectorRegistry, names: tuple[str, ...]) -> set[str]:
    text = generate_latest(registry).decode()
    return {
        line
        for line in text.splitlines()
        if line.split("{")[0].split(" ")[0].startswith(names) and "_created" not in line
    }


def test_per_check_series_read_as_prometheus_client_writes_them() -> None:
    ours = AgentMetrics()
    theirs = CollectorRegistry()
    checks = Counter(
        "vigil_agent_checks",
        "Checks run, by kind and result status.",
        ["kind", "status"],
        registry=theirs,
    )
    durations = Histogram(
        "vigil_agent_check_duration_seconds",
        "Wall time of one check, by kind.",
        ["kind"],
        buckets=_DURATION_BUCKETS,
        registry=theirs,
    )
    lateness = Histogram(
        "vigil_agent_lease_lateness_seconds",
        "How late each slot was when leased (control plane clock: server_time - scheduled_at).",
        buckets=_LATENESS_BUCKETS,
        registry=theirs,
    )
    for i, value in enumerate(VALUES):
        kind, status = ("http", "up") if i % 3 else ("tcp", "down")
        ours.observe_check(kind, status, max(0.0, value))
        checks.labels(kind, status).inc()
        durations.labels(kind).observe(max(0.0, value))
        ours.observe_lease_lateness(value)
        lateness.observe(max(0.0, value))
    names = (
        "vigil_agent_checks",
        "vigil_agent_check_duration_seconds",
        "vigil_agent_lease_lateness_seconds",
    )
    assert series(ours.registry, names) == series(theirs, names)
    get = ours.registry.get_sample_value
    assert get("vigil_agent_checks_total", {"kind": "tcp", "status": "down"}) == 4
    assert get("vigil_agent_lease_lateness_seconds_count") == len(VALUES)
    assert get("vigil_agent_check_duration_seconds_bucket", {"kind": "http", "le": "+Inf"}) == 8


def test_nothing_observed_yet_still_exposes_an_empty_lateness_histogram() -> None:
    get = AgentMetrics().registry.get_sample_value
    assert get("vigil_agent_lease_lateness_seconds_count") == 0
    assert get("vigil_agent_checks_total", {"kind": "http", "status": "up"}) is None
