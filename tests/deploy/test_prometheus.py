"""deploy/prometheus: promtool checks the scrape configs and the rules, runs the rule unit tests,
and every alert has a unit test."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy.helpers import PROMETHEUS, tool

HINT = "make test-deps (Debian package prometheus)"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool", HINT), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_scrape_configs_are_valid() -> None:
    for name in ("prometheus.yml", "prometheus-kubernetes.yml"):
        res = promtool("check", "config", "--syntax-only", name)
        assert res.returncode == 0, res.stdout + res.stderr


def test_rules_are_valid() -> None:
    res = promtool("check", "rules", "rules/vigil.rules.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_unit_tests_pass() -> None:
    res = promtool("test", "rules", "tests/vigil.rules.test.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "vigil.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS / "tests" / "vigil.rules.test.yml").read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert alerts - fired == set(), "alerts no unit test fires"
    assert alerts - quiet == set(), "alerts no unit test keeps quiet"


def test_rules_read_from_the_scraped_jobs() -> None:
    cfg = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in cfg["scrape_configs"]}
    assert {"vigil-api", "vigil-worker", "vigil-agent"} <= jobs
    k8s = yaml.safe_load((PROMETHEUS / "prometheus-kubernetes.yml").read_text())
    k8s_jobs = {job["job_name"] for job in k8s["scrape_configs"]}
    assert {"vigil-api", "vigil-worker", "vigil-agent"} <= k8s_jobs
