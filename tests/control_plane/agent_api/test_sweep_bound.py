"""The missed-slot sweep scans only slots due at least the shortest interval of any target ago
(queries.sql, ``sweep_missed``; issue 18): a backlog of due slots that are not missed yet is not
walked every second. The bound must be the shortest interval, never a longer one: a slot of a
short-interval target is missed while a longer one's, due as long ago, is not."""

from __future__ import annotations

import uuid

from litestar import Litestar

from control_plane.domain.agent_api.jobs import sweep_missed
from tests.conftest import Persona
from tests.monitoring_helpers import fetch, make_due, make_target


async def test_the_sweep_records_short_intervals_missed_and_leaves_longer_ones(
    owner: Persona, db_url: str, app: Litestar
) -> None:
    short = await make_target(owner, name="short", interval=20)
    long_ = await make_target(owner, name="long", interval=60)
    longest = await make_target(owner, name="longest", interval=300)
    # Each 25 s overdue: past the short interval, within the two longer ones.
    for t in (short, long_, longest):
        await make_due(db_url, t["id"], seconds_ago=25)
    assert await sweep_missed(app.state.resources) == 1
    rows = await fetch(
        db_url, "SELECT target_id, status FROM results ORDER BY scheduled_at, target_id"
    )
    assert rows == [(uuid.UUID(short["id"]), "missed")]
    # The longer ones are still due, untouched, and leasable.
    (still,) = await fetch(
        db_url,
        "SELECT count(*) FROM schedules WHERE target_id = ANY(%s)"
        " AND next_due_at < now() - interval '20 seconds'",
        [uuid.UUID(long_["id"]), uuid.UUID(longest["id"])],
    )
    assert still == (2,)
    # Once the 60 s one is past its interval too, it is recorded; the 300 s one is not.
    await make_due(db_url, long_["id"], seconds_ago=65)
    assert await sweep_missed(app.state.resources) == 1
    (got,) = await fetch(
        db_url, "SELECT count(*) FROM results WHERE target_id = %s", uuid.UUID(long_["id"])
    )
    assert got == (1,)
