"""The notify outage's latency probe, in a process of its own (``python -m bench.latency_probe``).

A simulated agent of a quiet region (``--region``, ``--targets`` targets of its own) makes its
slots due, then times one ``/api/agent/lease`` and, when it got leases, one
``/api/agent/ingest`` of their results, every ``--every`` seconds, until SIGTERM. Each round trip
is one line appended to ``--out``: ``<kind> <wall start> <seconds> <ok>``, flushed at once. The
probe knows nothing of the bench's phases: the bench notes when its windows began and ended and
takes the samples that started inside each (``window``). In the bench's own process, its
bookkeeping (the receiver, polling PostgreSQL) competed with the probe's timings.

The token comes from ``VIGIL_PROBE_TOKEN`` (not argv: ``ps`` shows argv).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bench.honesty import percentile

KINDS = ("lease", "ingest")
# The quiet p99 is the denominator of the goal's ratio: with fewer samples than this it is
# little more than the quiet window's maximum (last time: 37 samples).
MIN_QUIET_SAMPLES = 100

PROBE_DUE = """
UPDATE schedules SET next_due_at = now(), leased_by = NULL, lease_expires_at = NULL
WHERE region_id = %(region)s
"""


@dataclass(frozen=True)
class ProbeSample:
    kind: str
    at: float  # wall clock (time.time()) when the request was sent
    seconds: float
    ok: bool


def format_sample(s: ProbeSample) -> str:
    return f"{s.kind} {s.at:.6f} {s.seconds:.6f} {int(s.ok)}\n"


def parse_samples(text: str) -> list[ProbeSample]:
    """The probe's lines; a line cut short (the probe stopped mid-write) or foreign is skipped."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] not in KINDS or parts[3] not in ("0", "1"):
            continue
        try:
            out.append(ProbeSample(parts[0], float(parts[1]), float(parts[2]), parts[3] == "1"))
        except ValueError:
            continue
    return out


def window(samples: Iterable[ProbeSample], kind: str, start: float, end: float) -> list[float]:
    """Round-trip seconds of the ``kind`` samples sent in [start, end), failed ones included
    (a refused request's time is still what the agent waited)."""
    return [s.seconds for s in samples if s.kind == kind and start <= s.at < end]


def p99(xs: Sequence[float]) -> float:
    """Nearest-rank p99 (``bench.honesty.percentile``); NaN when there is nothing."""
    return percentile(sorted(xs), 0.99) if xs else float("nan")


def ratio(
    quiet: Sequence[float], storm: Sequence[float], min_quiet: int = MIN_QUIET_SAMPLES
) -> float:
    """p99 during the outage / p99 quiet. Refuses (ValueError) a quiet window of fewer than
    ``min_quiet`` samples, whose p99 is not one, and an empty outage window."""
    if len(quiet) < min_quiet:
        raise ValueError(f"{len(quiet)} quiet samples; a p99 needs at least {min_quiet}")
    if not storm:
        raise ValueError("no samples during the outage")
    return p99(storm) / p99(quiet)


async def _run(args: argparse.Namespace, out: TextIO) -> None:
    import aiohttp
    import psycopg

    from bench.scenarios.ingest import _bodies

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    headers = {"Authorization": f"Bearer {os.environ['VIGIL_PROBE_TOKEN']}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        await psycopg.AsyncConnection.connect(args.db_url, autocommit=True) as conn,
    ):
        while not stop.is_set():
            await conn.execute(PROBE_DUE, {"region": args.region})
            at, t = time.time(), time.perf_counter()
            leases: list[dict[str, Any]] = []
            ok = False
            try:
                async with session.post(
                    args.base_url + "/api/agent/lease",
                    json={"max": args.targets, "wait_ms": 0},
                ) as resp:
                    got = await resp.json()
                    ok = resp.status == 200
                    leases = got.get("leases", []) if ok else []
            except (aiohttp.ClientError, ValueError):
                pass
            out.write(format_sample(ProbeSample("lease", at, time.perf_counter() - t, ok)))
            if leases:
                (body,) = _bodies(leases)
                at, t = time.time(), time.perf_counter()
                ok = False
                try:
                    async with session.post(
                        args.base_url + "/api/agent/ingest",
                        data=body,
                        headers={"Content-Type": "application/json"},
                    ) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    pass
                out.write(format_sample(ProbeSample("ingest", at, time.perf_counter() - t, ok)))
            try:
                await asyncio.wait_for(stop.wait(), args.every)
            except TimeoutError:
                pass


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    # Line-buffered: each sample is on disk when written, whenever the probe is stopped.
    with open(args.out, "a", buffering=1) as out:
        asyncio.run(_run(args, out))


if __name__ == "__main__":
    main()
