"""The worker's half of heartbeats: a period that passes without a signal is a ``down`` result.

Run by the per-second sweep. A heartbeat whose deadline (last signal + interval + grace) passed
gets one ``HEARTBEAT_MISSED`` result per missed period and its deadline moved to the first one
still ahead, in one statement, so two workers sweeping at once record each period once.
"""

from __future__ import annotations

import structlog
from psycopg.types.json import Jsonb

from control_plane.core.queue import enqueue_evaluation
from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from shared import codes

from .service import HEARTBEAT_REGION

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.heartbeats")

SWEEP_BATCH = 2000
# Missed periods recorded per heartbeat per sweep at most (a day at 60 s); after a longer worker
# outage the deadline still jumps to the present.
MAX_MISSED_PERIODS = 1440
MISSED_ERROR = "no ping within interval + grace"


async def sweep_overdue(res: Resources) -> int:
    """Record the missed periods of every overdue heartbeat; returns how many were recorded."""
    missed = 0
    marked: list[str] = []
    params = {
        "limit": SWEEP_BATCH,
        "max_periods": MAX_MISSED_PERIODS,
        "region_id": HEARTBEAT_REGION,
        "error": MISSED_ERROR,
        "error_code": codes.HEARTBEAT_MISSED,
        "details": Jsonb({"signal": "missed"}),
    }
    async with res.db.connection() as conn:
        while True:
            row = await (await conn.execute(Q.sweep_overdue, params)).fetchone()
            if row is None:
                break
            missed += int(row["missed"])
            marked.extend(str(t) for t in row["marked"])
            if int(row["moved"]) < SWEEP_BATCH:
                break
    if marked:
        log.info("heartbeats_missed", results=missed, targets=len(marked))
        await enqueue_evaluation(res, marked)
    return missed
