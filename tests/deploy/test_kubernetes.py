"""deploy/kubernetes: every manifest the kustomization lists validates against the Kubernetes
JSON schemas (kubernetes-validate, offline, strict), and the wiring the issue asks for is
there: probes, resources, PDB, HPA, the migration Job, an agent Deployment per region and the
NetworkPolicy that keeps agents to the control plane and the internet."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.helpers import DEPLOY

K8S = DEPLOY / "kubernetes"
# The oldest Kubernetes the manifests are meant for, and the newest schema the package knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_matches_the_kubernetes_schemas(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_listed_file_exists_and_nothing_is_left_out() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_api_probes_pdb_and_hpa() -> None:
    api = by_kind("Deployment")["vigil-api"]
    (c,) = containers(api)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "vigil-api" in by_kind("Service")
    assert by_kind("PodDisruptionBudget")["vigil-api"]["spec"]["minAvailable"] == 1
    hpa = by_kind("HorizontalPodAutoscaler")["vigil-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vigil-api"
    assert hpa["spec"]["minReplicas"] >= 2


def test_every_container_has_resources_and_runs_unprivileged() -> None:
    workloads = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for c in pod["containers"]:
            assert c["resources"]["requests"]["cpu"], doc["metadata"]["name"]
            assert c["resources"]["limits"]["memory"], doc["metadata"]["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["image"] == "vigil"  # set by the kustomization's images:


def test_migration_job_and_one_agent_deployment_per_region() -> None:
    (job,) = by_kind("Job").values()
    assert containers(job)[0]["args"] == ["vigil", "migrate"]
    agents = {
        name: d
        for name, d in by_kind("Deployment").items()
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "agent"
    }
    regions = {d["metadata"]["labels"]["vigil.dev/region"] for d in agents.values()}
    assert regions == {"eu-west", "us-east"}
    for d in agents.values():
        (c,) = containers(d)
        # An agent sees its own token and nothing of the control plane's secrets.
        refs = {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        assert refs == {f"vigil-agent-{d['metadata']['labels']['vigil.dev/region']}"}


def test_agents_reach_only_the_control_plane_and_the_internet() -> None:
    policy = by_kind("NetworkPolicy")["vigil-agent"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "agent"
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    egress = policy["egress"]
    to_api = [
        r
        for r in egress
        if any(
            p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            == "api"
            for p in r["to"]
        )
    ]
    assert to_api and to_api[0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    blocks = [p["ipBlock"] for r in egress for p in r["to"] if "ipBlock" in p]
    v4 = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
        assert private in v4["except"]


def test_ingress_never_routes_metrics_or_operator() -> None:
    paths = {
        p["path"]
        for ing in by_kind("Ingress").values()
        for rule in ing["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert {"/api/v1", "/api/public/v1", "/api/agent", "/healthz", "/readyz"} <= paths
    assert not [p for p in paths if p.startswith(("/metrics", "/operator")) or p == "/"]
