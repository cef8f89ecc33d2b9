"""The agent process as a whole, against a control plane that cannot be reached."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from probe_agent.agent import Agent, AgentStartupError
from probe_agent.cli import GC_GEN0_THRESHOLD, tune_gc
from probe_agent.config import AgentConfig, ConfigError, parse_config
from probe_agent.spool import Spool
from tests.probe_agent.helpers import closed_port, drain, ids, results

GUARD_S = 30.0
METRICS = (
    "vigil_agent_checks_total",
    "vigil_agent_check_duration_seconds",
    "vigil_agent_spool_bytes",
    "vigil_agent_spool_dropped_total",
    "vigil_agent_inflight",
    "vigil_agent_ingest_errors_total",
)


def unreachable() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def lease_failures(agent: Agent) -> float:
    labels = {"reason": "unavailable"}
    return agent.metrics.registry.get_sample_value("vigil_agent_lease_errors_total", labels) or 0.0


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    return await resp.text()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
    raise AssertionError("metrics endpoint never answered")


async def test_agent_rides_out_an_unreachable_control_plane_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    spool_dir = tmp_path / "spool"
    earlier = Spool(spool_dir, max_bytes=1 << 20)  # results left by a previous run
    earlier.append(results(0, 5))
    earlier.close()
    metrics_port = closed_port()
    config = AgentConfig(
        control_plane=unreachable(),
        token="sm_agent_test",
        spool_dir=spool_dir,
        metrics_port=metrics_port,
        lease_wait_ms=0,
    )
    agent = Agent(config)
    run = asyncio.create_task(agent.run())
    text = await scrape(metrics_port)
    for name in METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    for _ in range(3000):
        if lease_failures(agent):
            break
        await asyncio.sleep(0.01)
    assert lease_failures(agent) >= 1
    assert not run.done()  # a lost control plane does not stop the agent
    agent.request_stop()
    assert await asyncio.wait_for(run, GUARD_S) == 0
    kept = Spool(spool_dir, max_bytes=1 << 20)
    assert drain(kept) == ids(0, 5)  # spooled results are kept for the next run
    kept.close()


async def test_unusable_spool_or_metrics_port_stops_the_start(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    holder = Spool(spool_dir, max_bytes=1 << 20)  # another agent on the same directory
    config = AgentConfig(control_plane=unreachable(), token="sm_agent_t", spool_dir=spool_dir)
    with pytest.raises(AgentStartupError, match="in use by another agent"):
        await Agent(config).run()
    holder.close()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = AgentConfig(
            control_plane=unreachable(), token="sm_agent_t", spool_dir=spool_dir, metrics_port=port
        )
        with pytest.raises(AgentStartupError, match="cannot serve metrics"):
            await Agent(busy).run()
    Spool(spool_dir, max_bytes=1 << 20).close()  # the failed start let go of the spool


def test_config_from_flags_and_environment(tmp_path: Path) -> None:
    env = {
        "VIGIL_AGENT_CONTROL_PLANE": "https://vigil.example",
        "VIGIL_AGENT_TOKEN": "sm_agent_fromenv",
        "VIGIL_AGENT_CONCURRENCY": "7",
    }
    config = parse_config(["--concurrency", "9", "--metrics-port", "9100"], env)
    assert config.control_plane == "https://vigil.example"
    assert config.token == "sm_agent_fromenv"
    assert config.concurrency == 9  # a flag wins over the environment
    assert config.metrics_port == 9100 and config.metrics_host == "127.0.0.1"
    assert config.spool_dir == Path(".vigil/agent-spool")
    assert config.spool_max_bytes == 64 << 20
    assert (config.batch_size, config.batch_age_ms) == (200, 1000)
    defaults = parse_config([], env)
    assert defaults.concurrency == 7 and defaults.metrics_port is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token", "sm_agent_x"], "--control-plane"),
        (["--control-plane", "http://cp"], "--token"),
        (["--control-plane", "ftp://cp", "--token", "sm_agent_x"], "http(s)"),
        (["--control-plane", "http://cp", "--token", "sk_live_x"], "sm_agent_"),
        (
            ["--control-plane", "http://cp", "--token", "sm_agent_x", "--batch-size", "5000"],
            "batch",
        ),
        (
            ["--control-plane", "http://cp", "--token", "sm_agent_x", "--concurrency", "x"],
            "integer",
        ),
    ],
)
def test_bad_config_is_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(argv, {})


async def test_cli_exits_zero_on_sigterm_with_json_logs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIL_AGENT_CONTROL_PLANE": unreachable(),
        "VIGIL_AGENT_TOKEN": "sm_agent_test",
        "VIGIL_AGENT_SPOOL_DIR": str(tmp_path / "spool"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe_agent.cli",
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    events: list[dict[str, object]] = []
    try:
        while not any(e.get("event") == "agent_started" for e in events):
            line = await asyncio.wait_for(proc.stderr.readline(), GUARD_S)
            assert line, "the agent exited before it started"
            events.append(json.loads(line))
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), GUARD_S)
        assert await asyncio.wait_for(proc.wait(), GUARD_S) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    events += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert events[-1]["event"] == "agent_stopped"
    assert events[-1]["exit_code"] == 0


async def test_cli_exits_two_on_bad_config() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_AGENT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe_agent.cli",
        "--control-plane",
        "http://127.0.0.1:1",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), GUARD_S)
    assert proc.returncode == 2
    assert b"--token" in err


def test_the_cli_keeps_short_lived_objects_out_of_older_gc_generations() -> None:
    saved = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, saved[1], saved[2])
        assert gc.get_freeze_count() > 0  # what is alive at start skips full collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_the_agent_runs_on_uvloop_where_it_is_installed() -> None:
    import uvloop

    from probe_agent.cli import run_loop

    async def which() -> type:
        return type(asyncio.get_running_loop())

    assert run_loop(which()) is uvloop.Loop


async def test_processes_n_runs_n_agents_each_with_its_own_spool(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIL_AGENT_CONTROL_PLANE": unreachable(),
        "VIGIL_AGENT_TOKEN": "sm_agent_test",
        "VIGIL_AGENT_SPOOL_DIR": str(tmp_path / "spool"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe_agent.cli",
        "--processes",
        "2",
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    events: list[dict[str, object]] = []
    try:
        while sum(e.get("event") == "agent_started" for e in events) < 2:
            line = await asyncio.wait_for(proc.stderr.readline(), GUARD_S)
            assert line, "the agents exited before they started"
            events.append(json.loads(line))
        # SIGTERM to the parent stops every agent cleanly (each releases and flushes).
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), GUARD_S)
        assert await asyncio.wait_for(proc.wait(), GUARD_S) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    events += [json.loads(line) for line in rest.splitlines() if line.strip()]
    started = [e for e in events if e.get("event") == "agent_started"]
    assert sorted(str(e["spool_dir"]) for e in started) == [
        str(tmp_path / "spool" / "process-0"),
        str(tmp_path / "spool" / "process-1"),
    ]
    stopped = [e for e in events if e.get("event") == "agent_stopped"]
    assert len(stopped) == 2 and all(e["exit_code"] == 0 for e in stopped)
