"""Results wait in the spool, in order, while the control plane cannot be reached."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from probe_agent.backoff import Backoff
from probe_agent.client import ControlPlaneClient, ControlPlaneUnavailableError
from probe_agent.metrics import AgentMetrics
from probe_agent.publisher import Publisher
from probe_agent.spool import Spool
from tests.probe_agent.helpers import closed_port, drain, ids, results


def unavailable(metrics: AgentMetrics) -> float:
    labels = {"reason": "unavailable"}
    return metrics.registry.get_sample_value("vigil_agent_ingest_errors_total", labels) or 0.0


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    ceilings = [1, 2, 4, 8, 8, 8]
    for ceiling in ceilings:
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_unreachable_control_plane_raises_a_transient_error() -> None:
    async with ControlPlaneClient(f"http://127.0.0.1:{closed_port()}", "sm_agent_x") as client:
        with pytest.raises(ControlPlaneUnavailableError):
            await client.ingest(results(0, 1))
        with pytest.raises(ControlPlaneUnavailableError):
            await client.lease(10, 0)


async def test_batches_are_spooled_in_order_while_unreachable(tmp_path: Path) -> None:
    metrics = AgentMetrics()
    spool = Spool(tmp_path, max_bytes=1 << 20)
    async with ControlPlaneClient(f"http://127.0.0.1:{closed_port()}", "sm_agent_x") as client:
        publisher = Publisher(
            client, spool, metrics, chunk_size=4, backoff=Backoff(base=0.01, cap=0.02)
        )
        drainer = asyncio.create_task(publisher.run())
        await publisher.publish(results(0, 6))
        await publisher.publish(results(6, 6))  # queued behind the spooled batch, not sent
        # The drainer keeps retrying with backoff and keeps everything while it cannot deliver.
        for _ in range(500):
            if unavailable(metrics) >= 4:
                break
            await asyncio.sleep(0.01)
        assert unavailable(metrics) >= 4
        drainer.cancel()
        await asyncio.gather(drainer, return_exceptions=True)
    assert spool.pending == 12
    assert drain(spool) == ids(0, 12)
    spool.close()
