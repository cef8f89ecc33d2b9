"""The worker's evaluation slots (``incidents/slots.py``, ``VIGIL_ENGINE_CONCURRENCY``): at most
``concurrency`` evaluations at once; the jobs that wait are merged into the next evaluation;
every target asked for is evaluated, none lost when an evaluation fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from litestar import Litestar

from control_plane.domain.incidents.jobs import SLOTS, evaluate_targets
from control_plane.domain.incidents.slots import EvaluationSlots
from control_plane.domain.incidents.surge import SurgePolicy
from control_plane.settings import SettingsError, settings_from_env
from tests.conftest import Persona
from tests.control_plane.incidents.test_evaluate_batch import add_results, marked
from tests.control_plane.incidents.test_incidents import incidents
from tests.monitoring_helpers import make_target


class Engine:
    """Stands in for the engine's evaluation: records each call's targets and how many ran at
    once; the first call waits for ``gate``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()
        self.fail_next = False

    async def evaluate(self, batch: list[str]) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if not self.calls:
                self.calls.append(batch)
                await self.gate.wait()
            else:
                self.calls.append(batch)
                await asyncio.sleep(0)
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("evaluation failed")
            return len(batch)
        finally:
            self.running -= 1


async def test_one_at_a_time_and_the_waiting_jobs_merged() -> None:
    slots, eng = EvaluationSlots(1, take=100), Engine()
    first = asyncio.create_task(slots.run(["a1", "a2"], eng.evaluate))
    await asyncio.sleep(0)
    # Two more jobs while the first evaluates: they wait, their targets pending together.
    second = asyncio.create_task(slots.run(["b1"], eng.evaluate))
    third = asyncio.create_task(slots.run(["c1", "a1", "b1"], eng.evaluate))
    await asyncio.sleep(0)
    assert slots.pending == 3  # b1 once; a1 again (a result came after its evaluation began)
    eng.gate.set()
    got = await asyncio.gather(first, second, third)
    assert eng.calls == [["a1", "a2"], ["b1", "c1", "a1"]]
    assert eng.most == 1
    # The job holding the slot evaluates what waits once it is done with its own; the others
    # find their targets taken.
    assert got == [5, 0, 0]
    assert slots.pending == 0


async def test_take_splits_a_backlog_into_passes_of_one_job() -> None:
    slots, eng = EvaluationSlots(1, take=2), Engine()
    first = asyncio.create_task(slots.run(["x"], eng.evaluate))
    await asyncio.sleep(0)
    rest = asyncio.create_task(slots.run(["a", "b", "c", "d", "e"], eng.evaluate))
    await asyncio.sleep(0)
    eng.gate.set()
    assert await asyncio.gather(first, rest) == [6, 0]
    assert eng.calls == [["x"], ["a", "b"], ["c", "d"], ["e"]]


async def test_concurrency_bounds_the_evaluations_in_flight() -> None:
    slots = EvaluationSlots(2, take=1)
    running = most = 0

    async def evaluate(batch: list[str]) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        return len(batch)

    got = await asyncio.gather(*(slots.run([f"t{i}"], evaluate) for i in range(10)))
    assert sum(got) == 10 and most == 2
    with pytest.raises(ValueError):
        EvaluationSlots(0, take=1)


async def test_a_failed_evaluation_leaves_its_targets_for_the_next() -> None:
    slots, eng = EvaluationSlots(1, take=100), Engine()
    eng.fail_next = True
    failing = asyncio.create_task(slots.run(["a", "b"], eng.evaluate))
    await asyncio.sleep(0)
    eng.gate.set()
    with pytest.raises(RuntimeError):
        await failing
    assert slots.pending == 2
    assert await slots.run(["c"], eng.evaluate) == 3
    assert eng.calls[-1] == ["a", "b", "c"]


async def test_jobs_through_the_slots_open_every_incident(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    """Real evaluations, as the worker runs them: concurrent jobs within one slot open each
    target's incident once and clear every mark."""
    targets = [await make_target(owner, region_policy="any", alert_confirmations=1) for _ in "abc"]
    for t in targets:
        await add_results(db_url, t["id"], "default", ["down"])
    ctx = {"resources": app.state.resources, SLOTS: EvaluationSlots(1, take=1000)}
    got = await asyncio.gather(*(evaluate_targets(ctx, [t["id"]]) for t in targets))
    assert sum(got) == 3
    for t in targets:
        assert len(await incidents(owner, t["id"])) == 1
    assert await marked(db_url) == set()


def test_the_concurrency_is_a_deployment_setting() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://x/y",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    assert settings_from_env(env).engine.concurrency == 1
    assert settings_from_env(env).engine.rate == 0.0
    assert settings_from_env({**env, "VIGIL_ENGINE_RATE": "700"}).engine.rate == 700.0
    with pytest.raises(SettingsError, match="VIGIL_ENGINE_RATE"):
        settings_from_env({**env, "VIGIL_ENGINE_RATE": "-5"})
    assert settings_from_env({**env, "VIGIL_ENGINE_CONCURRENCY": "4"}).engine.concurrency == 4
    for bad in ("0", "-2", "many"):
        with pytest.raises(SettingsError, match="VIGIL_ENGINE_CONCURRENCY"):
            settings_from_env({**env, "VIGIL_ENGINE_CONCURRENCY": bad})


async def test_a_rate_holds_each_pass_for_its_share_of_a_second() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(secs: float) -> None:
        slept.append(secs)
        now[0] += secs

    async def evaluate(batch: list[str]) -> int:
        now[0] += 0.01  # the evaluation's own time counts toward the pass
        return len(batch)

    slots = EvaluationSlots(1, take=10, rate=100.0, clock=lambda: now[0], sleep=sleep)
    assert await slots.run([f"t{i}" for i in range(25)], evaluate) == 25
    # Passes of 10, 10 and 5 targets at 100/s: 0.1, 0.1 and 0.05 s each, in all.
    assert slept == [pytest.approx(0.09), pytest.approx(0.09), pytest.approx(0.04)]
    assert now[0] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        EvaluationSlots(1, take=1, rate=-1.0)


def _fake_time() -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    now = [0.0]

    async def sleep(secs: float) -> None:
        now[0] += secs

    return now, sleep


def _recording() -> tuple[list[list[str]], Callable[[list[str]], Awaitable[int]]]:
    """An evaluation that records each call's batch and evaluates all of it at once."""
    calls: list[list[str]] = []

    async def evaluate(batch: list[str]) -> int:
        calls.append(batch)
        return len(batch)

    return calls, evaluate


async def test_a_surge_evaluates_a_trickle_until_the_inflow_drops() -> None:
    """500 targets asked for at once (over the surge's 100/s): passes of a quarter second of
    its rate (10 targets at 40/s) while they count in the inflow (the last half second); then
    the rest in one pass."""
    now, sleep = _fake_time()
    calls, evaluate = _recording()

    slots = EvaluationSlots(
        1,
        take=1000,
        clock=lambda: now[0],
        sleep=sleep,
        surge=SurgePolicy(inflow=100, rate=40, max_defer_secs=5),
    )
    ids = [f"t{i}" for i in range(500)]
    assert await slots.run(ids, evaluate) == 500
    assert [len(c) for c in calls] == [10, 10, 480]
    assert [t for c in calls for t in c] == ids  # in the order they were asked for
    assert now[0] == pytest.approx(0.5)


async def test_a_surge_defers_no_target_longer_than_its_max() -> None:
    now, sleep = _fake_time()
    calls, evaluate = _recording()

    slots = EvaluationSlots(
        1,
        take=1000,
        clock=lambda: now[0],
        sleep=sleep,
        surge=SurgePolicy(inflow=100, rate=40, max_defer_secs=0.25),
    )
    assert await slots.run([f"t{i}" for i in range(500)], evaluate) == 500
    # At 0.25 s the oldest pending target has waited the max: the rest at once, surge or not.
    assert [len(c) for c in calls] == [10, 490]


async def test_a_surge_rate_of_zero_defers_every_target_then_all_go_together() -> None:
    """The default: nothing evaluated while surging (``surging`` says so, for the delivery);
    the sweep asking again for the deferred targets does not prolong the surge."""
    now, sleep = _fake_time()
    calls: list[list[str]] = []
    seen: list[bool] = []

    async def evaluate(batch: list[str]) -> int:
        calls.append(batch)
        return len(batch)

    async def watching_sleep(secs: float) -> None:
        seen.append(slots.surging())
        # The sweep (marks older than 2 s) asks for the same targets again meanwhile.
        await slots.run(ids[:100], evaluate)
        await sleep(secs)

    slots = EvaluationSlots(
        1,
        take=1000,
        clock=lambda: now[0],
        sleep=watching_sleep,
        surge=SurgePolicy(inflow=100, max_defer_secs=8),
    )
    ids = [f"t{i}" for i in range(600)]
    assert await slots.run(ids, evaluate) == 600
    assert calls == [ids[:1000]] and seen == [True, True]
    assert now[0] == pytest.approx(0.5) and not slots.surging()


async def test_below_the_surge_inflow_nothing_is_deferred() -> None:
    now, sleep = _fake_time()
    calls, evaluate = _recording()

    slots = EvaluationSlots(
        1, take=1000, clock=lambda: now[0], sleep=sleep, surge=SurgePolicy(inflow=1000, rate=40)
    )
    # 499 in the last half second: 998/s.
    assert await slots.run([f"t{i}" for i in range(499)], evaluate) == 499
    assert [len(c) for c in calls] == [499] and now[0] == 0.0
    # Off (inflow 0, the class's default): no surge whatever the inflow.
    off = EvaluationSlots(1, take=1000, clock=lambda: now[0], sleep=sleep)
    assert await off.run([f"u{i}" for i in range(5000)], evaluate) == 5000
    assert [len(c) for c in calls[1:]] == [1000] * 5


async def test_jobs_that_come_during_a_surge_return_at_once_and_are_evaluated() -> None:
    """A job finding the slot taken leaves its targets and returns (it holds none of the
    worker's jobs while it waits); the holder evaluates them, still at the surge's pace."""
    now, sleep = _fake_time()
    gate = asyncio.Event()
    calls: list[list[str]] = []

    async def evaluate(batch: list[str]) -> int:
        calls.append(batch)
        if len(calls) == 1:
            await gate.wait()
        return len(batch)

    slots = EvaluationSlots(
        1, take=1000, clock=lambda: now[0], sleep=sleep, surge=SurgePolicy(inflow=100, rate=40)
    )
    holder = asyncio.create_task(slots.run([f"a{i}" for i in range(200)], evaluate))
    await asyncio.sleep(0)
    assert await slots.run([f"b{i}" for i in range(20)], evaluate) == 0
    assert slots.pending == 190 + 20
    gate.set()
    assert await holder == 220
    assert sorted(t for c in calls for t in c) == sorted(
        [f"a{i}" for i in range(200)] + [f"b{i}" for i in range(20)]
    )
    assert len(calls[1]) == 10  # still surging: 220 asked for within the second


def test_the_surge_is_a_deployment_setting() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://x/y",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    eng = settings_from_env(env).engine
    assert (eng.surge_inflow, eng.surge_rate, eng.surge_max_secs) == (1000.0, 0.0, 8.0)
    eng = settings_from_env(
        {
            **env,
            "VIGIL_ENGINE_SURGE_INFLOW": "0",
            "VIGIL_ENGINE_SURGE_RATE": "250",
            "VIGIL_ENGINE_SURGE_MAX_SECS": "3",
        }
    ).engine
    assert (eng.surge_inflow, eng.surge_rate, eng.surge_max_secs) == (0.0, 250.0, 3.0)
    for name, bad in (
        ("VIGIL_ENGINE_SURGE_INFLOW", "-1"),
        ("VIGIL_ENGINE_SURGE_RATE", "-3"),
        ("VIGIL_ENGINE_SURGE_MAX_SECS", "soon"),
    ):
        with pytest.raises(SettingsError, match=name):
            settings_from_env({**env, name: bad})
    with pytest.raises(ValueError):
        SurgePolicy(inflow=100, rate=-1)


async def test_a_paced_backlog_goes_in_passes_of_a_quarter_second() -> None:
    """At 100/s a backlog of 60 is evaluated 25 at a time, each pass held its quarter second
    (not 60 at once and then a pause of 0.6 s)."""
    now, sleep = _fake_time()
    calls, evaluate = _recording()

    slots = EvaluationSlots(1, take=1000, rate=100.0, clock=lambda: now[0], sleep=sleep)
    assert await slots.run([f"t{i}" for i in range(60)], evaluate) == 60
    assert [len(c) for c in calls] == [25, 25, 10] and now[0] == pytest.approx(0.6)


async def test_the_sweeps_targets_do_not_make_a_surge() -> None:
    """The sweep asks for marks left behind (some just evaluated, read before their marks were
    cleared): 2,000 of them at once are evaluated at once, not deferred."""
    now, sleep = _fake_time()
    calls, evaluate = _recording()

    slots = EvaluationSlots(
        1, take=5000, clock=lambda: now[0], sleep=sleep, surge=SurgePolicy(inflow=100)
    )
    ids = [f"t{i}" for i in range(2000)]
    assert await slots.run(ids, evaluate, inflow=False) == 2000
    assert [len(c) for c in calls] == [2000] and not slots.surging()
