"""Through a real agent: a spooled batch holding one row out of range (``status_code`` 40000,
which once failed the whole batch with a 500 and made the agent re-send it forever) gets its
good rows stored, the bad one rejected, and the agent's spool drained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from probe_agent.spool import Spool
from shared.protocol import CheckResult
from tests.e2e.processes import BIN, System, free_port, wait_for
from tests.monitoring_helpers import fetch, make_due
from tests.stack import OPERATOR_TOKEN

pytestmark = pytest.mark.e2e


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Path) -> AsyncIterator[System]:
    sysm = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await sysm.start_control_plane()
    try:
        yield sysm
    finally:
        sysm.stop_all()


def result(lease: dict[str, Any], **extra: Any) -> CheckResult:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "lease_id": lease["lease_id"],
        "target_id": lease["target_id"],
        "scheduled_at": lease["scheduled_at"],
        "started_at": now,
        "finished_at": now,
        "status": "up",
        "latency_ms": 3.5,
        "status_code": 200,
    }
    fields.update(extra)
    return msgspec.convert(fields, CheckResult, from_attributes=False)


def segments(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("seg-*.jsonl"))


async def test_a_row_out_of_range_is_rejected_and_the_agent_spool_drains(
    system: System, db_url: str
) -> None:
    # Targets nobody serves: a closed port on this machine (private targets are allowed here).
    url = f"http://127.0.0.1:{free_port()}/health"
    ids = [
        (
            await system.api(
                "POST", "/api/v1/targets", {"name": f"t{i}", "check": {"type": "http", "url": url}}
            )
        )["id"]
        for i in range(3)
    ]
    for tid in ids:
        await make_due(db_url, tid)
    agent = await system.call(
        "POST", "/operator/agents", {"name": "a1", "region": "default"}, OPERATOR_TOKEN
    )
    # The agent leased these slots before a restart; its results wait in its spool.
    leases = (await system.call("POST", "/api/agent/lease", {"max": 3}, agent["token"], ok=(200,)))[
        "leases"
    ]
    assert len(leases) == 3
    by_target = {lease["target_id"]: lease for lease in leases}
    good = [result(by_target[ids[0]]), result(by_target[ids[2]], status="down", status_code=503)]
    bad = result(by_target[ids[1]], status_code=40000)
    spool_dir = system.workdir / "spool-a1"
    spool = Spool(spool_dir, max_bytes=1 << 20)
    spool.append([good[0], bad, good[1]])
    spool.close()
    assert len(segments(spool_dir)) == 1

    system.spawn(
        "agent-a1",
        str(BIN / "vigil-agent"),
        "--control-plane",
        system.base_url,
        "--token",
        agent["token"],
        "--spool-dir",
        str(spool_dir),
        "--lease-wait-ms",
        "1000",
        "--batch-age-ms",
        "200",
    )

    async def stored() -> set[str]:
        rows = await fetch(
            db_url, "SELECT target_id::text FROM results WHERE status IN ('up', 'down')"
        )
        return {r[0] for r in rows}

    async def drained() -> bool:
        return await stored() == {ids[0], ids[2]} and not segments(spool_dir)

    await wait_for(drained, 30, 0.2)
    await asyncio.sleep(1.5)  # long enough for a re-send, were the batch still spooled
    assert await stored() == {ids[0], ids[2]}
    assert not segments(spool_dir)
    api_log = (system.workdir / "api.log").read_text(errors="replace")
    assert "status=500" not in api_log and '"status": 500' not in api_log
    agent_log = (system.workdir / "agent-a1.log").read_text(errors="replace")
    assert "INVALID_RESULT" in agent_log  # the agent logged the rejected row
