"""Where the agent's CPU per check goes, without the control plane: the agent's own parts run
against loopback nginx, each in a process of its own, beside the bare aiohttp loop.

    python -m bench.agent_parts [http|tcp] [ROUNDS] [SECONDS]

Modes, per round, one after the other (interleaved, so machine noise hits them alike):

- ``bare``: ``bench.aiohttp_loop``, the ceiling of the agent scenario;
- ``runner``: the agent's ``CheckExecutor`` and check runner, fed the same leases from memory
  (results counted and dropped);
- ``pipeline``: ``runner`` plus what the agent does around a check besides talking to the
  control plane: each lease batch decoded from its JSON (``decode_lease_response``), the status
  memory, and the batcher, whose sink encodes every batch as an ingest body.

Prints checks per CPU-second of each mode and its ratio to ``bare``. What ``pipeline`` leaves
out (the lease and ingest calls, and sharing the machine with the API and PostgreSQL) is the
difference to ``make bench SCENARIO=agent``. No goal is set here; it says which part to work
on, and the agent scenario says whether the work paid off.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from bench.peers import Nginx
from bench.proc import Processes

WARMUP_S = 0.5
TARGETS = 30_000
LEASES_PER_CALL = 100
CONCURRENCY = 100


async def _parts(mode: str, kind: str, target: str, seconds: float) -> dict[str, float]:
    from probe_agent.batcher import Batcher
    from probe_agent.changes import StatusMemory
    from probe_agent.checks import build_runners
    from probe_agent.leases import decode_lease_response
    from probe_agent.metrics import AgentMetrics
    from probe_agent.runner import CheckExecutor
    from shared.checks import CheckSpec, HttpCheck, TcpCheck
    from shared.protocol import CheckResult, IngestRequest, Lease, LeaseResponse

    host, _, port = target.rpartition(":")
    spec: CheckSpec = (
        HttpCheck(url=target, verify_tls=False)
        if kind == "http"
        else TcpCheck(host=host, port=int(port))
    )
    now = datetime.now(UTC)
    leases = [
        Lease(
            lease_id=str(uuid.uuid4()),
            target_id=str(uuid.uuid4()),
            region="parts",
            scheduled_at=now,
            expires_at=now + timedelta(seconds=60),
            interval_secs=60,
            check=spec,
            org_id="parts",
            allow_private=True,  # the target is loopback nginx
        )
        for _ in range(TARGETS)
    ]
    bodies = [
        msgspec.json.encode(LeaseResponse(leases=leases[i : i + LEASES_PER_CALL], server_time=now))
        for i in range(0, TARGETS, LEASES_PER_CALL)
    ]
    up = [0]
    memory = StatusMemory()

    async def sink(batch: list[CheckResult]) -> None:
        msgspec.json.encode(IngestRequest(results=batch))
        await asyncio.sleep(0)

    batcher = Batcher(sink, max_size=200, max_age=1.0, busy_max_size=1000)

    def report(result: CheckResult) -> None:
        up[0] += result.status == "up"
        if mode == "pipeline":
            batcher.add(result, urgent=memory.changed(result))

    executor = CheckExecutor(
        CONCURRENCY,
        report,
        AgentMetrics(),
        build_runners(),
        per_host_max_inflight=CONCURRENCY,
        lease_ahead=LEASES_PER_CALL,
    )
    batching = asyncio.create_task(batcher.run())
    start = time.monotonic()
    measure_from, stop_at = start + WARMUP_S, start + WARMUP_S + seconds
    marks: dict[str, float] = {}
    n = 0
    while (clock := time.monotonic()) < stop_at:
        if clock >= measure_from and not marks:
            marks = {"t": clock, "cpu": time.process_time(), "up": up[0]}
        await executor.wait_for_free_slot(LEASES_PER_CALL // 2, within=0.5)
        free = executor.free_slots
        if mode == "pipeline":
            for lease in decode_lease_response(bodies[n % len(bodies)]).leases[:free]:
                memory.leased(lease)
                executor.submit(lease)
            n += 1
        else:
            for _ in range(free):
                executor.submit(leases[n % TARGETS])
                n += 1
    cpu, t1, done = time.process_time(), time.monotonic(), up[0]
    batching.cancel()
    await executor.shutdown(2.0)
    checks = done - marks["up"]
    return {"per_cpu_s": checks / (cpu - marks["cpu"]), "checks_per_s": checks / (t1 - marks["t"])}


def _child(mode: str, kind: str, target: str, seconds: float) -> None:
    from probe_agent.cli import run_loop, tune_gc
    from probe_agent.logs import configure_logging

    configure_logging("info")
    tune_gc()
    print(json.dumps(run_loop(_parts(mode, kind, target, seconds))))


def _run(mode: str, kind: str, target: str, seconds: float) -> float:
    if mode == "bare":
        argv = ["-m", "bench.aiohttp_loop", kind, target, str(CONCURRENCY), str(seconds)]
    else:
        argv = ["-m", "bench.agent_parts", "--child", mode, kind, target, str(seconds)]
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return float(r["per_cpu_s"]) if mode != "bare" else r["done"] / r["cpu_s"]


def main(kind: str, rounds: int, seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vigil-agent-parts-"))
    procs = Processes(folder / "logs")
    nginx = Nginx(folder / "nginx", procs)
    nginx.start()
    target = nginx.url("http") if kind == "http" else f"127.0.0.1:{nginx.tcp_port}"
    try:
        for _ in range(rounds):
            bare = _run("bare", kind, target, seconds)
            line = [f"{kind}: bare {bare:,.0f}"]
            for mode in ("runner", "pipeline"):
                per = _run(mode, kind, target, seconds)
                line.append(f"{mode} {per:,.0f} ({per / bare:.3f})")
            print("  ".join(line), "checks per CPU-second", flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        _child(args[1], args[2], args[3], float(args[4]))
    else:
        main(
            args[0] if args else "http",
            int(args[1]) if len(args) > 1 else 3,
            float(args[2]) if len(args) > 2 else 5.0,
        )
