"""An operator's bad day, one fault per case, on a whole system (``harness.Stack``).

Every case lets the system run steadily, injects its fault, lets it recover for a minute, and
says which slots no agent could run (``Window.blind``). ``run_case`` then waits for the rollups to
catch up and measures the window (``analysis.analyse``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import psycopg

from control_plane.domain.results.rollups import MARGIN_SECS, floor_minute
from tests.faults.analysis import Report, Span, Window, analyse, settled, ts
from tests.faults.harness import INTERVAL, Stack, wait_for

WARMUP = 2 * INTERVAL  # seconds after every agent delivered its first result, before judging
BEFORE = 20  # steady running judged before the fault
AFTER = 60  # judged after the fault ends
API_DOWN = 240  # past I + the settle margin (170 s): spooled results land in settled minutes
PG_DOWN = 30
REDIS_DOWN = 10
RESTART_AFTER = 20  # a killed process is back after this, as a supervisor would bring it


async def _until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.time()))


async def _ready(stack: Stack) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{stack.base_url}/readyz", timeout=aiohttp.ClientTimeout(2)) as r,
        ):
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _steady(stack: Stack) -> tuple[float, float]:
    """Wait out the warm-up and the steady part; returns (window start, fault start)."""
    start = stack.started_at + WARMUP
    await _until(start + BEFORE)
    return start, time.time()


def _close(window: Window) -> Window:
    window.end = time.time()
    return window


async def agent_kill9(stack: Stack, notes: dict[str, object]) -> Window:
    start, fault = await _steady(stack)
    await stack.stop("eu-1", signal.SIGKILL)
    await asyncio.sleep(RESTART_AFTER)
    stack.start_agent("eu-1")
    await _until(fault + AFTER)
    # Slots the killed agent held (leased before it died) could be run by no one else.
    return _close(Window(start, 0, fault, fault, [Span(fault - INTERVAL - 1, fault + 1, "eu")]))


async def agent_sigterm(stack: Stack, notes: dict[str, object]) -> Window:
    start, fault = await _steady(stack)
    notes["agent_stop_secs"] = round(await stack.stop("us-1"), 1)
    await asyncio.sleep(RESTART_AFTER)
    stack.start_agent("us-1")
    await _until(fault + AFTER)
    return _close(Window(start, 0, fault, fault))


async def api_stop(stack: Stack, notes: dict[str, object]) -> Window:
    start, fault = await _steady(stack)
    notes["api_stop_secs"] = round(await stack.stop("api"), 1)
    await asyncio.sleep(API_DOWN)
    await stack.start_api()
    back = time.time()
    await _until(back + AFTER)
    return _close(Window(start, 0, fault, back, [Span(fault - 1, back)]))


async def pg_restart(stack: Stack, notes: dict[str, object]) -> Window:
    assert stack.pg is not None
    start, fault = await _steady(stack)
    await asyncio.to_thread(stack.pg.stop)
    await asyncio.sleep(PG_DOWN)
    await asyncio.to_thread(stack.pg.start)
    notes["api_ready_after_pg_secs"] = round(await wait_for(lambda: _ready(stack), 60, 0.1), 1)
    back = time.time()
    await _until(back + AFTER)
    return _close(Window(start, 0, fault, back, [Span(fault - 1, back)]))


async def redis_restart(stack: Stack, notes: dict[str, object]) -> Window:
    assert stack.redis is not None
    start, fault = await _steady(stack)
    await asyncio.to_thread(stack.redis.stop)
    await asyncio.sleep(REDIS_DOWN)
    await asyncio.to_thread(stack.redis.start)
    back = time.time()
    await _until(back + AFTER)
    notes["worker_alive"] = stack.procs["worker"].poll() is None
    return _close(Window(start, 0, fault, back))


async def worker_kill9(stack: Stack, notes: dict[str, object]) -> Window:
    start, fault = await _steady(stack)
    await stack.stop("worker", signal.SIGKILL)
    await asyncio.sleep(RESTART_AFTER)
    stack.start_worker()
    back = time.time()
    await _until(back + AFTER)
    return _close(Window(start, 0, fault, back))


Case = Callable[[Stack, dict[str, object]], Awaitable[Window]]
CASES: dict[str, Case] = {
    "agent_kill9": agent_kill9,
    "agent_sigterm": agent_sigterm,
    "api_stop": api_stop,
    "pg_restart": pg_restart,
    "redis_restart": redis_restart,
    "worker_kill9": worker_kill9,
}


async def rollup_runs(stack: Stack) -> int:
    async with await psycopg.AsyncConnection.connect(stack.db_url) as conn:
        row = await (await conn.execute("SELECT runs FROM rollup_state")).fetchone()
    return int(row[0]) if row else 0


async def run_case(name: str, workdir: Path, keep: bool = False) -> tuple[Report, Stack]:
    """Run one case on a fresh system and measure it. The stack is closed on return (``keep``:
    its database's folder is left in place, named in the report's notes)."""
    stack = Stack(workdir, keep=keep)
    notes: dict[str, object] = {}
    try:
        await stack.start()
        window = await CASES[name](stack, notes)
        # Slots of the window are complete once their interval has passed and the missed-slot
        # sweep ran. The rollups are judged where they promise to be exact, on settled minutes:
        # wait until the watermark settles every minute the window touches, then two more runs
        # (the first recomputes what late results marked meanwhile).
        window.end -= 2
        await asyncio.sleep(INTERVAL + 3)
        last = floor_minute(ts(window.end)) + timedelta(minutes=1)

        async def window_settled() -> bool:
            async with await psycopg.AsyncConnection.connect(stack.db_url) as conn:
                return await settled(conn) >= last

        await wait_for(window_settled, 60 + INTERVAL + MARGIN_SECS + 300, 1)
        runs = await rollup_runs(stack)

        async def rolled() -> bool:
            return await rollup_runs(stack) >= runs + 2

        await wait_for(rolled, 90, 1)
        report = await analyse(stack, name, window)
        report.notes.update(notes)
        report.notes["workdir"] = str(workdir)
        if keep:
            report.notes["servers_dir"] = str(stack._servers_dir)
        return report, stack
    finally:
        await stack.close()
