"""The schedule's sweep: slots nobody ran in time become ``missed`` results."""

from __future__ import annotations

from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from shared import codes

Q = Queries.beside(__file__)

SWEEP_BATCH = 2000
# Missed placeholders written per slot row per sweep at most (an agentless day at 60 s = 1440).
MAX_MISSED_SLOTS = 1440


async def sweep_missed(res: Resources) -> int:
    """Record every slot left unrun past its interval as ``missed`` and move its schedule to the
    present; returns how many slots were recorded."""
    total = 0
    async with res.db.connection() as conn:
        while True:
            row = await (
                await conn.execute(
                    Q.sweep_missed,
                    {
                        "limit": SWEEP_BATCH,
                        "max_slots": MAX_MISSED_SLOTS,
                        "error_code": codes.MISSED,
                    },
                )
            ).fetchone()
            moved = int(row["moved"]) if row else 0
            total += int(row["missed"]) if row else 0
            if moved < SWEEP_BATCH:
                return total
