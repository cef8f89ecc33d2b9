"""The compose stack's wiring, live, without containers: a real `vigil serve`, the nginx
configuration of deploy/compose in front of it, the bootstrap script creating regions and agent
tokens through the proxy, `vigil worker --metrics-port`, a `vigil-agent` leasing through the
proxy, and a real Prometheus (Debian's) scraping them with the alert rules loaded.

Checked: the dashboard and the rules name only metrics the processes really export; every
dashboard and rule query is valid PromQL that Prometheus evaluates; the proxy routes the public
surface as documented."""

from __future__ import annotations

import json
import os
import re
import shutil
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
    tool,
)
from tests.e2e.processes import BIN, System, free_port, wait_for
from tests.stack import OPERATOR_TOKEN, Stack

BOOTSTRAP = DEPLOY / "compose" / "bootstrap.py"
NGINX_CONF = DEPLOY / "compose" / "nginx.conf"
RULES = PROMETHEUS / "rules" / "vigil.rules.yml"
# Grafana's variables, as a query with every option selected would see them.
GRAFANA_VARS = {"$__rate_interval": "1m", "$region": ".*", "$org": ".*", "$target": ".*"}


def dashboard_queries() -> dict[str, str]:
    dash = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dash["panels"]
        for target in panel.get("targets", [])
    }


def variable_queries() -> dict[str, str]:
    dash = json.loads(DASHBOARD.read_text())
    return {
        f"variable {v['name']}": v["definition"]
        for v in dash["templating"]["list"]
        if v["type"] == "query"
    }


def rule_queries() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text())
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
    # Every query goes to the data source the variable picks (the provisioned one by default).
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    # No two panels share a grid cell, and all fit the 24-column grid.
    taken: dict[tuple[int, int], str] = {}
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, (panel["title"], taken.get((x, y)))
                taken[x, y] = panel["title"]


def bootstrap(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BOOTSTRAP)],
        env={**env, "VIGIL_BOOTSTRAP_DIR": str(out)},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
            return r.status, await r.text()
    except aiohttp.ClientError:
        return 0, ""


def start_nginx(system: System, tmp: Path, api_port: int) -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: make test-deps")
    port = free_port()
    conf = NGINX_CONF.read_text()
    conf = re.sub(r"server api-\d:8000", f"server 127.0.0.1:{api_port}", conf)
    conf = conf.replace("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
    conf = conf.replace("/var/cache/nginx/vigil_public", str(tmp / "cache"))  # the micro-cache
    (tmp / "vigil.conf").write_text(conf)
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log;\ndaemon off;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n"
        f"  proxy_temp_path {tmp}/proxy;\n  include {tmp}/vigil.conf;\n}}\n"
    )
    system.spawn("nginx", nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"))
    return f"http://127.0.0.1:{port}"


def start_prometheus(system: System, tmp: Path, targets: dict[str, str]) -> str:
    prometheus = tool("prometheus", "make test-deps (Debian package prometheus)")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "vigil-api", "static_configs": [{"targets": [targets["api"]]}]},
            {"job_name": "vigil-worker", "static_configs": [{"targets": [targets["worker"]]}]},
            {
                "job_name": "vigil-agent",
                "static_configs": [
                    {"targets": [targets["agent"]], "labels": {"region": "eu-west"}}
                ],
            },
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    system.spawn(
        "prometheus",
        prometheus,
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    )
    return f"http://127.0.0.1:{port}"


async def promql(base: str, query: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{base}/api/v1/query", params={"query": query}) as r,
    ):
        body: dict[str, Any] = await r.json()
        return body


@pytest.fixture
async def running(db_url: str, stack: Stack, tmp_path: Path) -> Any:
    system = System(db_url, stack.redis_url, tmp_path)
    try:
        yield system
    finally:
        system.stop_all()


async def test_live_stack(running: System, tmp_path: Path) -> None:
    system = running
    await system.start_control_plane()
    api_port = int(system.base_url.rsplit(":", 1)[1])
    proxy = start_nginx(system, tmp_path, api_port)
    await wait_for(lambda: _ok(f"{proxy}/readyz"), 20, 0.2)

    # The proxy routes the public surface as documented.
    assert (await fetch(f"{proxy}/metrics"))[0] == 404
    assert (await fetch(f"{system.base_url}/metrics"))[0] == 200
    assert (await fetch(f"{proxy}/healthz"))[0] == 200
    assert (await fetch(f"{proxy}/api/v1/regions"))[0] == 401  # the app's own answer
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    assert (await fetch(f"{proxy}/operator/regions", operator))[0] == 200  # from loopback

    # The compose bootstrap, through the proxy: regions and one agent each, idempotent.
    env = {
        **os.environ,
        "VIGIL_BOOTSTRAP_URL": proxy,
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

    worker_port, agent_port = free_port(), free_port()
    # The worker's metrics endpoint from the environment, as deploy/kubernetes sets it.
    system.env.update(
        VIGIL_WORKER_METRICS_PORT=str(worker_port), VIGIL_WORKER_METRICS_HOST="127.0.0.1"
    )
    system.spawn("worker", str(BIN / "vigil"), "worker")
    for var in ("VIGIL_WORKER_METRICS_PORT", "VIGIL_WORKER_METRICS_HOST"):
        system.env.pop(var)
    system.spawn(
        "agent",
        str(BIN / "vigil-agent"),
        "--control-plane",
        proxy,
        "--token",
        token,
        "--spool-dir",
        str(tmp_path / "spool"),
        "--metrics-port",
        str(agent_port),
    )
    targets = {
        "api": f"127.0.0.1:{api_port}",
        "worker": f"127.0.0.1:{worker_port}",
        "agent": f"127.0.0.1:{agent_port}",
    }
    texts: dict[str, str] = {}

    async def all_answer() -> bool:
        for name, hostport in targets.items():
            status, text = await fetch(f"http://{hostport}/metrics")
            if status == 200:
                texts[name] = text
        return len(texts) == len(targets)

    await wait_for(all_answer, 30, 0.3)
    per_process = {name: exported_names(text) for name, text in texts.items()}
    for name, names in per_process.items():
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names, name
        assert "python_info" in names, name
    assert "vigil_slots_missed_total" in per_process["worker"]
    assert "vigil_dependency_up" in per_process["api"]
    exported = set().union(*per_process.values()) | PROMETHEUS_OWN

    queries = {**dashboard_queries(), **rule_queries()}
    missing = {
        where: sorted(metric_names(expr) - exported - NOT_YET_EXPORTED)
        for where, expr in {**queries, **variable_queries()}.items()
    }
    assert {k: v for k, v in missing.items() if v} == {}
    # The allowance is for the notification metrics only, and goes once they are exported.
    assert not (NOT_YET_EXPORTED & exported), "drop them from NOT_YET_EXPORTED"

    # A real Prometheus scrapes all three and evaluates every query.
    prom = start_prometheus(system, tmp_path, targets)

    async def scraped() -> bool:
        try:
            body = await promql(
                prom, "count(up == 1) == 3 and count(vigil_dependency_up == 1) == 2"
            )
        except aiohttp.ClientError:
            return False
        return bool(body.get("data", {}).get("result"))

    await wait_for(scraped, 60, 0.5)

    # The agent, leasing through the proxy, is seen in its region.
    async def agent_seen() -> bool:
        body = await promql(prom, 'vigil_agent_last_seen_timestamp_seconds{region="eu-west"}')
        return bool(body["data"]["result"])

    await wait_for(agent_seen, 30, 0.5)
    failed = {}
    for where, expr in queries.items():
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        body = await promql(prom, expr)
        if body.get("status") != "success":
            failed[where] = body.get("error")
    assert failed == {}
    rules = await get_json(f"{prom}/api/v1/rules")
    loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert loaded == set(rule_queries())


async def _ok(url: str) -> bool:
    return (await fetch(url))[0] == 200


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()
