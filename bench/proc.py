"""Processes the benchmark starts, what they cost (CPU seconds, memory from /proc), and the
median/min/max of repeated figures.

CPU of a process counts its whole tree: its own utime+stime, the children it has reaped
(cutime+cstime) and its live descendants; for PostgreSQL that is the postmaster and every
backend. Memory is PSS (proportional set size, from ``smaps_rollup``), which sums correctly over
processes that share pages (PostgreSQL's shared buffers), with RSS as the fallback.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.honesty import parse_smaps_rollup, private_pss_kib

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def _tree(pid: int, kids: Mapping[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def tree_cpu_s(pid: int, kids: Mapping[int, list[int]] | None = None) -> float:
    """CPU seconds used so far by ``pid`` and its descendants (reaped ones included)."""
    kids = children_map() if kids is None else kids
    ticks = 0
    for p in _tree(pid, kids):
        fields = _stat(p)
        if fields:  # utime, stime, cutime, cstime are fields 14-17 of stat
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def _smaps(pid: int) -> dict[str, int]:
    """The kB fields of smaps_rollup; ``{"Pss": RSS}`` from statm where it cannot be read."""
    try:
        fields = parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
        if "Pss" in fields:
            return fields
    except OSError:
        pass
    try:
        return {"Pss": int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB}
    except (OSError, ValueError, IndexError):
        return {}


def _pss_kib(pid: int) -> int:
    return _smaps(pid).get("Pss", 0)


def tree_mem_mib(pid: int, kids: Mapping[int, list[int]] | None = None) -> float:
    kids = children_map() if kids is None else kids
    return sum(_pss_kib(p) for p in _tree(pid, kids)) / 1024


def tree_private_mib(pid: int, kids: Mapping[int, list[int]] | None = None) -> tuple[float, float]:
    """(PSS without shared memory, shared-memory PSS) of a process tree, MiB. PostgreSQL's
    shared buffers are the second: a cache it fills as pages are touched, not memory per target."""
    kids = children_map() if kids is None else kids
    private = shmem = 0
    for p in _tree(pid, kids):
        fields = _smaps(p)
        private += private_pss_kib(fields)
        shmem += fields.get("Pss_Shmem", 0)
    return private / 1024, shmem / 1024


@dataclass
class Sample:
    """CPU seconds and memory of named processes at one moment."""

    at: float
    cpu_s: dict[str, float]
    mem_mib: dict[str, float]
    # PSS without shared memory, and the shared-memory part (see ``tree_private_mib``).
    private_mib: dict[str, float] = field(default_factory=dict)
    shmem_mib: dict[str, float] = field(default_factory=dict)


def sample(pids: Mapping[str, int]) -> Sample:
    kids = children_map()
    split = {name: tree_private_mib(pid, kids) for name, pid in pids.items()}
    return Sample(
        at=time.monotonic(),
        cpu_s={name: tree_cpu_s(pid, kids) for name, pid in pids.items()},
        mem_mib={name: tree_mem_mib(pid, kids) for name, pid in pids.items()},
        private_mib={name: v[0] for name, v in split.items()},
        shmem_mib={name: v[1] for name, v in split.items()},
    )


def own_cpu_s() -> float:
    """CPU seconds of this process alone (every thread, no children): the bench's share when
    it also serves something (the notify scenario's webhook receiver). ``tree_cpu_s`` of the
    bench would count every process it started."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def parse_proc_stat_cpu(text: str) -> tuple[int, int]:
    """(busy, total) ticks of every core from /proc/stat's ``cpu`` line; idle and iowait are
    not busy."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice: in user/nice]
            total = sum(ticks[:8])
            return total - ticks[3] - ticks[4], total
    raise ValueError("no cpu line")


def machine_ticks() -> tuple[int, int]:
    return parse_proc_stat_cpu(Path("/proc/stat").read_text())


def cores_busy(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Cores busy on average between two ``machine_ticks`` readings (every process, ours or
    not)."""
    busy, total = b[0] - a[0], b[1] - a[1]
    return busy / total * (os.cpu_count() or 1) if total > 0 else float("nan")


def cpu_between(a: Sample, b: Sample) -> dict[str, float]:
    return {name: round(b.cpu_s[name] - a.cpu_s[name], 3) for name in a.cpu_s if name in b.cpu_s}


def spread(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min and max of a figure measured over several runs (the runs are kept too)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": round(statistics.median(vals), digits),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
        "runs": [round(v, digits) for v in vals],
    }


@dataclass
class Processes:
    """Child processes, each in its own session (a Ctrl-C reaches only the benchmark, which then
    stops them in reverse order), each logging to ``<log_dir>/<name>.log``."""

    log_dir: Path
    items: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        if name in self.items and self.items[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            # PostgreSQL's backends then say whom they serve (``bench/pgcpu.py``).
            env = {**(os.environ if env is None else env), "PGAPPNAME": name}
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.items[name] = proc
        return proc

    def pid(self, name: str) -> int:
        return self.items[name].pid

    def check(self) -> None:
        """Raise if a child has died (its log's tail says why)."""
        for name, proc in self.items.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, name: str, timeout: float = 20.0) -> None:
        proc = self.items.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its group

    def stop_all(self) -> None:
        for name in reversed(list(self.items)):
            self.stop(name)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
