"""Scenario outcomes and the report: ``bench/results/<timestamp>.md`` and ``.json``.

A figure is the median and spread (min/max) of its runs, with its unit and, where the issue sets
one, the target it is held against. Targets are reported, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.proc import spread


@dataclass
class Figure:
    label: str
    unit: str
    stats: dict[str, Any]
    target: str | None = None
    met: bool | None = None


@dataclass
class Outcome:
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    # process -> CPU seconds per run (or per window)
    cpu_s: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(
        self,
        label: str,
        values: Sequence[float],
        unit: str,
        *,
        target: str | None = None,
        meets: Callable[[float], bool] | None = None,
        digits: int = 3,
    ) -> Figure:
        stats = spread(values, digits)
        met = None
        if meets is not None and stats["median"] is not None:
            met = bool(meets(stats["median"]))
        fig = Figure(label, unit, stats, target, met)
        self.figures.append(fig)
        return fig


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


def _machine() -> dict[str, Any]:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def render_markdown(started: datetime, machine: dict[str, Any], outcomes: list[Outcome]) -> str:
    lines = [
        f"# Vigil benchmark — {started.strftime('%Y-%m-%d %H:%M:%S UTC')}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"kernel {machine['kernel']}, commit {machine['commit'] or '?'}; load average at start "
        f"{machine['load_avg_at_start']}.",
        "",
        "Every figure: median of the runs, with min-max. Targets are the issue's; reported, not "
        "asserted. CPU = utime+stime from /proc of the process and its children.",
        "",
        "## Targets at a glance",
        "",
        "| scenario | figure | median | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        for f in o.figures:
            if f.target:
                met = {True: "yes", False: "**no**", None: "—"}[f.met]
                lines.append(
                    f"| {o.scenario} | {f.label} | {_fmt(f.stats['median'])} {f.unit} | "
                    f"{f.target} | {met} |"
                )
    for o in outcomes:
        lines += ["", f"## {o.scenario}", ""]
        if o.params:
            lines.append("Parameters: " + ", ".join(f"{k}={v}" for k, v in o.params.items()) + ".")
            lines.append("")
        if o.error:
            lines += [f"**Failed:** {o.error}", ""]
        if o.figures:
            lines += [
                "| figure | median | min | max | unit | runs |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for f in o.figures:
                s = f.stats
                runs = ", ".join(_fmt(v) for v in s["runs"])
                lines.append(
                    f"| {f.label} | {_fmt(s['median'])} | {_fmt(s['min'])} | {_fmt(s['max'])} "
                    f"| {f.unit} | {runs} |"
                )
        if o.cpu_s:
            lines += ["", "CPU seconds per run, by process:", ""]
            lines += ["| process | median | min | max | runs |", "| --- | --- | --- | --- | --- |"]
            for name, s in o.cpu_s.items():
                runs = ", ".join(_fmt(v) for v in s["runs"])
                cells = [name, _fmt(s["median"]), _fmt(s["min"]), _fmt(s["max"]), runs]
                lines.append("| " + " | ".join(cells) + " |")
        for note in o.notes:
            lines += ["", f"- {note}"]
        lines += ["", f"_Scenario took {o.seconds:.0f} s._"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, started: datetime, outcomes: list[Outcome]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    md, js = folder / f"{stamp}.md", folder / f"{stamp}.json"
    md.write_text(render_markdown(started, machine, outcomes))
    js.write_text(
        json.dumps(
            {
                "started_at": started.isoformat(),
                "finished_at": datetime.now(UTC).isoformat(),
                "machine": machine,
                "scenarios": [asdict(o) for o in outcomes],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    return md, js
