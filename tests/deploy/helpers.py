"""What the deploy tests share: paths, metric names in PromQL, tools found or skipped."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "vigil-overview.json"

# Names the rules and the dashboard may use that a live scrape need not show (none: every one
# of them is exported by a running API, worker or agent).
NOT_YET_EXPORTED: frozenset[str] = frozenset()
# Series Prometheus makes itself.
PROMETHEUS_OWN = frozenset({"up"})

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"\b((?:vigil|process|python)_[a-zA-Z0-9_]+|up)\b")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label values and strings left out)."""
    return set(_NAME.findall(_QUOTED.sub('""', expr)))


def tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return path


def exported_names(exposition: str) -> set[str]:
    """Every sample name an exposition can carry, families without samples included."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind in ("histogram", "summary"):
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
