"""The fault suite: each of an operator's bad days (``cases.py``) on a whole running system,
judged over every slot of its window (``analysis.py``). Slow (five to nine minutes a case: the
rollups are judged once the watermark has settled the window, about four minutes after it), so
it is marked ``faults``, left out of ``make test`` and run by ``make faults`` (CI runs both).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.cases import CASES, run_case
from tests.faults.harness import INTERVAL

pytestmark = pytest.mark.faults

# Seconds from the end of a fault until every slot is run on time, once, again.
RECOVERY_WITHIN = {
    "agent_kill9": 2 * INTERVAL,
    "agent_sigterm": INTERVAL,
    "api_stop": 2 * INTERVAL,
    "pg_restart": 2 * INTERVAL,
    "redis_restart": INTERVAL,
    "worker_kill9": INTERVAL,
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_system_heals(case: str, tmp_path: Path) -> None:
    report, stack = await run_case(case, tmp_path)
    summary = json.dumps(report.row(), indent=1, default=str)
    print(summary)
    context = f"{summary}\n{stack.tail_logs()}"
    # Every (target, region) has a result for every slot of the window: exactly one (the key
    # allows no second), none skipped.
    assert report.notes["keys"] == report.notes["expected_keys"], context
    assert report.gaps == 0, context
    # Each slot probed once; a kill -9 may lose a probe's result, and its slot is run again.
    assert report.max_probes <= (2 if case == "agent_kill9" else 1), context
    # Missed only where no agent could run the slot; no slot run later than its interval.
    assert report.missed_unexplained == 0, context
    assert report.worst_late_secs <= INTERVAL, context
    # The rollups count exactly the raw results, after any outage.
    assert report.rollup_minutes > 0 and report.rollup_mismatches == 0, context
    # Every target answered 200 throughout: any incident is a false one.
    assert report.false_incidents == 0, context
    assert report.recovery_secs <= RECOVERY_WITHIN[case], context
