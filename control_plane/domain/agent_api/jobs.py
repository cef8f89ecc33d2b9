"""The schedule's sweep: slots nobody ran in time become ``missed`` results."""

from __future__ import annotations

import structlog

from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from shared import codes

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.agent_api")

SWEEP_BATCH = 2000
# Missed placeholders written per slot row per sweep at most (an agentless day at 60 s = 1440).
MAX_MISSED_SLOTS = 1440
# Placeholders per statement (about: the oldest schedule is always taken whole), and statements
# per sweep: one sweep (every second) records at most about 5 x 10,000 slots, so an overloaded
# system is not slowed further by the bookkeeping of what it could not run (issue 18). What is
# left is recorded by the next sweeps; nothing is lost, a slot is only recorded later.
SWEEP_BUDGET = 10_000
SWEEP_STATEMENTS = 5


async def sweep_missed(
    res: Resources,
    *,
    batch: int = SWEEP_BATCH,
    budget: int = SWEEP_BUDGET,
    statements: int = SWEEP_STATEMENTS,
) -> int:
    """Record slots left unrun past their interval as ``missed`` and move their schedules to the
    present, within the bounds above; returns how many slots were recorded."""
    total = 0
    async with res.db.connection() as conn:
        for _ in range(statements):
            row = await (
                await conn.execute(
                    Q.sweep_missed,
                    {
                        "limit": batch,
                        "budget": budget,
                        "max_slots": MAX_MISSED_SLOTS,
                        "error_code": codes.MISSED,
                    },
                )
            ).fetchone()
            if row is None:
                return total
            total += int(row["missed"])
            # Done when the scan found less than a batch and the budget took all of it.
            if int(row["candidates"]) < batch and int(row["moved"]) == int(row["candidates"]):
                return total
    log.info("sweep_bounded", recorded=total, statements=statements)
    return total
