"""deploy/compose: the compose file against the compose specification's JSON schema (vendored in
schemas/, from check-jsonschema's copy), its wiring (every long-running service restarts and is
health-checked, bind mounts exist, Prometheus scrapes every Vigil process), and nginx -t on the
proxy configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, PROMETHEUS

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
ONE_SHOT = {"migrate", "bootstrap"}
BIN = Path(sys.executable).parent


def services() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return dict(doc["services"])


def test_compose_file_matches_the_compose_specification() -> None:
    res = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_whole_system_is_there() -> None:
    names = set(services())
    assert {
        "postgres",
        "redis",
        "migrate",
        "api-1",
        "api-2",
        "worker",
        "proxy",
        "bootstrap",
        "agent-eu-west",
        "agent-us-east",
        "prometheus",
        "grafana",
    } <= names


def test_long_running_services_restart_and_are_health_checked() -> None:
    for name, svc in services().items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no", name
            continue
        assert svc.get("restart") == "unless-stopped", name
        if not name.startswith(("agent-", "worker")):
            # Agents and the worker rely on the image's HEALTHCHECK.
            assert "healthcheck" in svc, name


def test_agents_never_join_the_backend_network() -> None:
    for name, svc in services().items():
        if name.startswith("agent-"):
            assert svc["networks"] == ["edge"], name
            assert "VIGIL_DATABASE_URL" not in svc.get("environment", {}), name
    assert "backend" in services()["postgres"]["networks"]
    assert "edge" not in services()["postgres"]["networks"]


def test_bind_mounts_exist() -> None:
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), (name, source)


def test_prometheus_scrapes_every_vigil_process() -> None:
    cfg = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    scraped = {
        target.split(":")[0]
        for job in cfg["scrape_configs"]
        for group in job.get("static_configs", [])
        for target in group["targets"]
    }
    vigil_processes = {n for n in services() if n.startswith(("api-", "agent-")) or n == "worker"}
    assert vigil_processes <= scraped


def test_secrets_come_from_the_env_file_only() -> None:
    text = COMPOSE.read_text()
    for secret in ("VIGIL_TOKEN_KEY", "VIGIL_SECRET_KEYS", "VIGIL_OPERATOR_ADMIN_TOKEN"):
        assert f"{secret}:" not in text
    example = (COMPOSE_DIR / "env.example").read_text()
    for var in (
        "POSTGRES_PASSWORD",
        "VIGIL_TOKEN_KEY",
        "VIGIL_SECRET_KEYS",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert f"\n{var}=" in example


def test_gen_env_writes_every_secret_once(tmp_path: Path) -> None:
    for name in ("gen-env.sh", "env.example"):
        shutil.copy(COMPOSE_DIR / name, tmp_path / name)
    subprocess.run(["sh", str(tmp_path / "gen-env.sh")], check=True, capture_output=True)
    env = dict(
        line.split("=", 1)
        for line in (tmp_path / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert all(env.values()), env.keys()
    assert env["VIGIL_SECRET_KEYS"].startswith("k1:")
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"
    from control_plane.settings import settings_from_env

    settings_from_env(
        {**env, "VIGIL_DATABASE_URL": "postgresql://x/y", "VIGIL_REDIS_URL": "redis://x"}
    )
    before = (tmp_path / ".env").read_text()
    subprocess.run(["sh", str(tmp_path / "gen-env.sh")], check=True, capture_output=True)
    assert (tmp_path / ".env").read_text() == before


def test_nginx_accepts_the_proxy_configuration(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: make test-deps (Debian package nginx)")
    # The compose service names do not resolve here: the same file with loopback upstreams.
    conf = (COMPOSE_DIR / "nginx.conf").read_text()
    conf = (
        conf.replace("server api-1:8000", "server 127.0.0.1:8001")
        .replace("server api-2:8000", "server 127.0.0.1:8002")
        .replace("/var/cache/nginx/vigil_public", str(tmp_path / "cache"))
    )
    (tmp_path / "vigil.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  include {tmp_path}/vigil.conf;\n}}\n"
    )
    res = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


def test_grafana_is_provisioned_with_the_data_source_and_the_dashboard() -> None:
    import json

    grafana = DEPLOY / "grafana"
    ds = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services()
    dash = json.loads((grafana / "vigil-overview.json").read_text())
    var = next(v for v in dash["templating"]["list"] if v["name"] == "datasource")
    assert var["current"]["value"] == source["uid"]
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "vigil.yml").read_text())[
        "providers"
    ]
    mounts = [v.split(":")[1] for v in services()["grafana"]["volumes"]]
    assert "/etc/grafana/provisioning" in mounts
    assert f"{providers[0]['options']['path']}/vigil-overview.json" in mounts
