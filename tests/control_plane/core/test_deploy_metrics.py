"""Metrics the deploy/ artefacts (alert rules, dashboard) rely on: the standard process and
Python collectors, dependency reachability, and the opt-in per-target series with their
cardinality guard."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from control_plane.app import create_app
from control_plane.domain.incidents.jobs import evaluate_targets
from control_plane.settings import Settings, TargetMetricsSettings, settings_from_env
from tests.conftest import Persona
from tests.monitoring_helpers import make_agent, make_due, make_target, result_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


async def test_metrics_carry_the_process_and_python_collectors(client: Any) -> None:
    names = {name for name, _ in samples((await client.get("/metrics")).text)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert "python_info" in names
    assert "python_gc_collections_total" in names


async def test_dependency_up_follows_postgres_and_redis(
    client: Any, app: Litestar, settings: Settings
) -> None:
    mm = app.state.resources.monitoring
    # A client of this test's loop (the app's own lives on the test client's loop).
    live = Redis.from_url(settings.redis.url)
    try:
        await mm.refresh(app.state.resources.db, live)
    finally:
        await live.aclose()
    got = samples((await client.get("/metrics")).text)
    assert got[("vigil_dependency_up", (("dependency", "postgres"),))] == 1
    assert got[("vigil_dependency_up", (("dependency", "redis"),))] == 1

    # Nothing listens on port 1: the ping fails, the gauge says so, PostgreSQL stays up.
    dead = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        await mm.refresh(app.state.resources.db, dead)
    finally:
        await dead.aclose()
    got = samples((await client.get("/metrics")).text)
    assert got[("vigil_dependency_up", (("dependency", "redis"),))] == 0
    assert got[("vigil_dependency_up", (("dependency", "postgres"),))] == 1

    # Nor on PostgreSQL's side: the refresh fails (the refresher logs it) and the gauge says 0.
    from psycopg_pool import AsyncConnectionPool

    gone: AsyncConnectionPool[Any] = AsyncConnectionPool(
        "postgresql://vigil@127.0.0.1:1/vigil", min_size=1, max_size=1, timeout=0.5, open=False
    )
    await gone.open(wait=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 (whatever psycopg raises for it)
            await mm.refresh(gone)
    finally:
        await gone.close()
    got = samples((await client.get("/metrics")).text)
    assert got[("vigil_dependency_up", (("dependency", "postgres"),))] == 0


async def _reported(
    owner: Persona, operator: Persona, db_url: str, app: Litestar, *, tags: list[str]
) -> dict[str, Any]:
    target = await make_target(owner, tags=tags) if tags else await make_target(owner)
    await make_due(db_url, target["id"])
    agent = await make_agent(operator)
    (lease,) = (await agent.lease()).json()["leases"]
    await agent.ingest([result_for(lease, "down")])
    await evaluate_targets({"resources": app.state.resources}, [target["id"]])
    return target


async def _scrape_with(settings: Settings, targets: TargetMetricsSettings) -> dict[Any, float]:
    app = create_app(dataclasses.replace(settings, target_metrics=targets))
    async with AsyncTestClient(app=app) as c:
        res = app.state.resources
        await res.monitoring.refresh(res.db)
        return samples((await c.get("/metrics")).text)


async def test_target_series_only_for_opted_in_orgs(
    owner: Persona, operator: Persona, db_url: str, app: Litestar, settings: Settings
) -> None:
    target = await _reported(owner, operator, db_url, app, tags=[])
    org = str(owner.org_id)
    key = (("org", org), ("region", "default"), ("target", target["id"]))

    off = await _scrape_with(settings, TargetMetricsSettings())
    assert not [
        k
        for k in off
        if k[0].startswith("vigil_target_") and k[0] != "vigil_target_metrics_truncated"
    ]

    on = await _scrape_with(settings, TargetMetricsSettings(orgs=frozenset({org})))
    assert on[("vigil_target_up", key)] == 0  # its last check was down
    assert on[("vigil_target_latency_seconds", key)] == 0.0125
    assert on[("vigil_target_phase_seconds", tuple(sorted((*key, ("phase", "dns")))))] == 0.001
    assert on[("vigil_target_phase_seconds", tuple(sorted((*key, ("phase", "ttfb")))))] == 0.008
    info = (("name", target["name"]), ("org", org), ("target", target["id"]))
    assert on[("vigil_target_info", info)] == 1
    assert on[("vigil_target_metrics_truncated", ())] == 0

    other = await _scrape_with(settings, TargetMetricsSettings(orgs=frozenset({"not-this-org"})))
    assert ("vigil_target_up", key) not in other

    everyone = await _scrape_with(settings, TargetMetricsSettings(orgs=frozenset({"*"})))
    assert ("vigil_target_up", key) in everyone


async def test_target_series_by_tag_and_capped(
    owner: Persona, operator: Persona, db_url: str, app: Litestar, settings: Settings
) -> None:
    target = await _reported(owner, operator, db_url, app, tags=["export"])
    key = (("org", str(owner.org_id)), ("region", "default"), ("target", target["id"]))

    tagged = await _scrape_with(settings, TargetMetricsSettings(tags=frozenset({"export"})))
    assert ("vigil_target_up", key) in tagged
    untagged = await _scrape_with(settings, TargetMetricsSettings(tags=frozenset({"other"})))
    assert ("vigil_target_up", key) not in untagged

    capped = await _scrape_with(
        settings, TargetMetricsSettings(orgs=frozenset({"*"}), max_series=0)
    )
    assert ("vigil_target_up", key) not in capped  # max 0 turns the export off


def test_target_metrics_settings_from_env() -> None:
    import base64

    from tests.stack import TOKEN_KEY

    key = base64.b64encode(TOKEN_KEY).decode()
    base = {
        "VIGIL_DATABASE_URL": "postgresql://x/y",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_TOKEN_KEY": key,
        "VIGIL_SECRET_KEYS": f"k1:{key}",
    }
    assert not settings_from_env(base).target_metrics.enabled
    t = settings_from_env(
        {
            **base,
            "VIGIL_TARGET_METRICS_ORGS": " a, b ,",
            "VIGIL_TARGET_METRICS_TAGS": "prod",
            "VIGIL_TARGET_METRICS_MAX": "50",
        }
    ).target_metrics
    assert t == TargetMetricsSettings(
        orgs=frozenset({"a", "b"}), tags=frozenset({"prod"}), max_series=50
    )
    assert t.enabled


async def test_certificate_days_remaining_per_target(
    owner: Persona, operator: Persona, db_url: str, app: Litestar, settings: Settings
) -> None:
    target = await make_target(
        owner, check={"type": "tls_cert", "host": "example.com"}, interval=3600
    )
    await make_due(db_url, target["id"])
    agent = await make_agent(operator)
    (lease,) = (await agent.lease()).json()["leases"]
    facts = {"days_remaining": 42, "not_after": "2027-01-17T00:00:00Z"}
    await agent.ingest([result_for(lease, "up", details=facts)])
    await evaluate_targets({"resources": app.state.resources}, [target["id"]])
    key = (("org", str(owner.org_id)), ("region", "default"), ("target", target["id"]))

    got = await _scrape_with(settings, TargetMetricsSettings(orgs=frozenset({"*"})))
    assert got[("vigil_target_tls_days_remaining", key)] == 42
    assert got[("vigil_target_up", key)] == 1
    assert ("vigil_target_domain_days_remaining", key) not in got


async def test_a_region_without_live_agents_is_not_reported_silent(
    operator: Persona, client: Any, app: Litestar
) -> None:
    agent = await make_agent(operator)
    await agent.lease()
    mm = app.state.resources.monitoring
    await mm.refresh(app.state.resources.db)
    key = ("vigil_agent_last_seen_timestamp_seconds", (("region", "default"),))
    assert key in samples((await client.get("/metrics")).text)
    resp = await operator.post(f"/operator/agents/{agent.id}/revoke")
    assert resp.status_code == 200, resp.text
    await mm.refresh(app.state.resources.db)
    assert key not in samples((await client.get("/metrics")).text)
