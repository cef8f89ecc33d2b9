"""The dashboard and the alert rules name only metrics the processes really export: a real
`vigil serve`, `vigil worker --metrics-port` and `vigil-agent --metrics-port` (its token made by
the compose bootstrap script) are started and scraped, and every name a panel or a rule reads
must be in what they answered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.deploy.helpers import (
    DASHBOARD,
    DEPLOY,
    NOT_YET_EXPORTED,
    PROMETHEUS,
    PROMETHEUS_OWN,
    exported_names,
    metric_names,
)
from tests.e2e.processes import BIN, System, free_port, wait_for
from tests.stack import OPERATOR_TOKEN, Stack

BOOTSTRAP = DEPLOY / "compose" / "bootstrap.py"


def dashboard_queries() -> dict[str, str]:
    dash = json.loads(DASHBOARD.read_text())
    queries = {}
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            queries[f"{panel['title']} / {target['refId']}"] = target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            queries[f"variable {var['name']}"] = var["definition"]
    return queries


def rule_queries() -> dict[str, str]:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "vigil.rules.yml").read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def test_the_dashboard_loads_and_every_panel_has_a_query() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "vigil-overview"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"region", "org", "datasource"} <= variables
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert metric_names(target["expr"]), (panel["title"], target["expr"])
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def bootstrap(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BOOTSTRAP)],
        env={**env, "VIGIL_BOOTSTRAP_DIR": str(out)},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def scrape(url: str) -> str | None:
    try:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            return await r.text() if r.status == 200 else None
    except aiohttp.ClientError:
        return None


@pytest.fixture
async def running(db_url: str, stack: Stack, tmp_path: Path) -> Any:
    system = System(db_url, stack.redis_url, tmp_path)
    try:
        yield system
    finally:
        system.stop_all()


async def test_every_queried_metric_is_exported(running: System, tmp_path: Path) -> None:
    system = running
    await system.start_control_plane()
    worker_port, agent_port = free_port(), free_port()
    system.spawn(
        "worker",
        str(BIN / "vigil"),
        "worker",
        "--metrics-port",
        str(worker_port),
        "--metrics-host",
        "127.0.0.1",
    )

    # The compose bootstrap: regions and one agent per region, idempotent.
    env = {
        **os.environ,
        "VIGIL_BOOTSTRAP_URL": system.base_url,
        "VIGIL_BOOTSTRAP_REGIONS": "eu-west:EU West,us-east:US East",
        "VIGIL_OPERATOR_ADMIN_TOKEN": OPERATOR_TOKEN,
    }
    out = tmp_path / "bootstrap"
    first = bootstrap(env, out)
    assert first.returncode == 0, first.stdout + first.stderr
    token = (out / "eu-west.token").read_text()
    assert token.startswith("sm_agent_")
    assert (out / "us-east.token").read_text().startswith("sm_agent_")
    assert oct((out / "eu-west.token").stat().st_mode & 0o777) == "0o600"
    again = bootstrap(env, out)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "exists" in again.stdout and (out / "eu-west.token").read_text() == token
    wrong = bootstrap({**env, "VIGIL_OPERATOR_ADMIN_TOKEN": "nope"}, tmp_path / "wrong")
    assert wrong.returncode == 1

    system.spawn(
        "agent",
        str(BIN / "vigil-agent"),
        "--control-plane",
        system.base_url,
        "--token",
        token,
        "--spool-dir",
        str(tmp_path / "spool"),
        "--metrics-port",
        str(agent_port),
    )
    urls = {
        "api": f"{system.base_url}/metrics",
        "worker": f"http://127.0.0.1:{worker_port}/metrics",
        "agent": f"http://127.0.0.1:{agent_port}/metrics",
    }
    texts: dict[str, str] = {}

    async def all_answer() -> bool:
        for name, url in urls.items():
            text = await scrape(url)
            if text is not None:
                texts[name] = text
        return len(texts) == len(urls)

    await wait_for(all_answer, 30, 0.3)
    per_process = {name: exported_names(text) for name, text in texts.items()}
    for name, names in per_process.items():
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names, name
        assert "python_info" in names, name
    assert "vigil_slots_missed_total" in per_process["worker"]
    assert "vigil_dependency_up" in per_process["api"]
    exported = set().union(*per_process.values()) | PROMETHEUS_OWN

    missing = {
        where: sorted(metric_names(expr) - exported - NOT_YET_EXPORTED)
        for where, expr in {**dashboard_queries(), **rule_queries()}.items()
    }
    assert {k: v for k, v in missing.items() if v} == {}
    # The allowance is for the notification metrics only, and goes once they are exported.
    assert not (NOT_YET_EXPORTED & exported), "drop them from NOT_YET_EXPORTED"
