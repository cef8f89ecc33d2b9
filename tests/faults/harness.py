"""A whole Vigil on its own servers, for the fault suite: embedded PostgreSQL and Redis in a
folder of their own (so they can be stopped and restarted), ``vigil serve``, ``vigil worker``,
two regions of two agents each, and a local HTTP target server that logs every probe it gets.

The processes come from a tree's virtualenv (``VIGIL_FAULTS_TREE``, default: this one), and
everything is set up through the CLI and the HTTP API only, so the same cases run against an
older checkout to measure "before".
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from aiohttp import web

from control_plane.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.stack import OPERATOR_TOKEN, ROOT, settings_env, test_settings

REGIONS = ("eu", "us")
AGENTS_PER_REGION = 2
TARGETS = 120
INTERVAL = 10  # seconds: the shortest an HTTP check allows, for the most slots per minute
TIMEOUT_MS = 2000


def tree_bin() -> Path:
    """Where ``vigil`` and ``vigil-agent`` come from: ``$VIGIL_FAULTS_TREE/.venv/bin`` or ours."""
    tree = os.environ.get("VIGIL_FAULTS_TREE")
    return Path(tree) / ".venv" / "bin" if tree else Path(sys.executable).parent


async def wait_for(cond: Callable[[], Awaitable[bool]], within: float, step: float = 0.3) -> float:
    """Poll ``cond`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not await cond():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(step)
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Probe:
    target: int
    region: str
    at: float  # epoch seconds


class ProbeServer:
    """The probed HTTP server: ``/t/<n>`` answers 200 and logs (n, region, time). Agents name
    their region in the User-Agent."""

    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        ua = request.headers.get("User-Agent", "")
        region = ua.split("region=", 1)[1].rstrip(")") if "region=" in ua else "?"
        self.probes.append(Probe(int(request.match_info["n"]), region, time.time()))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/t/{n}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/t/{n}"


@dataclass
class Stack:
    workdir: Path
    bin: Path = field(default_factory=tree_bin)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    db_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    agent_tokens: dict[str, str] = field(default_factory=dict)
    api_port: int = 0
    token: str = ""
    targets: dict[str, int] = field(default_factory=dict)  # target id -> n
    server: ProbeServer = field(default_factory=ProbeServer)
    started_at: float = 0.0
    # Keep PostgreSQL's data folder on close (to inspect a run: ``report --keep``).
    keep: bool = False
    _servers_dir: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- servers -------------------------------------------------------------------------------

    def start_servers(self) -> None:
        # Under the project's .vigil: as root PostgreSQL runs as `postgres`, which cannot reach
        # pytest's private tmp dirs.
        (ROOT / ".vigil").mkdir(exist_ok=True)
        self._servers_dir = Path(tempfile.mkdtemp(prefix="faults-", dir=ROOT / ".vigil"))
        self._servers_dir.chmod(0o755)
        self.pg = EmbeddedPostgres(self._servers_dir / "pg", fast=True)
        self.redis = EmbeddedRedis(self._servers_dir / "redis", persist=False)
        admin = self.pg.start()
        self.redis.start()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE vigil")
        self.db_url = admin.rsplit("/", 1)[0] + "/vigil"
        self.env = {**os.environ, **settings_env(test_settings(self.db_url, self.redis.url))}
        for var in [v for v in self.env if v.startswith("VIGIL_AGENT_")]:
            self.env.pop(var)
        self.run_cli("migrate")

    def run_cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(self.bin / "vigil"), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout.strip()

    # -- processes -----------------------------------------------------------------------------

    def spawn(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        self.procs[name] = proc
        return proc

    async def start_api(self) -> None:
        self.api_port = self.api_port or free_port()
        self.spawn("api", str(self.bin / "vigil"), "serve", "--port", str(self.api_port))

        async def ready() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(f"{self.base_url}/readyz", timeout=aiohttp.ClientTimeout(2)) as r,
                ):
                    return r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        await wait_for(ready, 180, 0.1)  # minutes, not seconds, on a loaded machine

    def start_worker(self) -> None:
        self.spawn("worker", str(self.bin / "vigil"), "worker")

    def start_agent(self, name: str) -> None:
        self.spawn(
            name,
            str(self.bin / "vigil-agent"),
            "--control-plane",
            self.base_url,
            "--token",
            self.agent_tokens[name],
            "--spool-dir",
            str(self.workdir / f"spool-{name}"),
        )

    async def stop(self, name: str, sig: int = signal.SIGTERM, within: float = 30) -> float:
        """Signal a process and wait for it to exit; returns the seconds it took."""
        proc = self.procs[name]
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            await asyncio.to_thread(proc.wait, within)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)
        return time.monotonic() - started

    # -- the system ------------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        # Generous: on a loaded machine the API may take long to accept a connection.
        timeout = aiohttp.ClientTimeout(total=180)
        async with (
            aiohttp.ClientSession(timeout=timeout) as s,
            s.request(method, self.base_url + path, json=body, headers=headers) as resp,
        ):
            text = await resp.text()
            assert resp.status in (200, 201, 204), (method, path, resp.status, text)
            return await resp.json() if text else None

    async def start(self) -> None:
        """Servers, the API, the worker, the regions and agents, an org with its targets."""
        await self.server.start()
        await asyncio.to_thread(self.start_servers)
        await self.start_api()
        self.start_worker()
        org = self.run_cli("org", "create", "Faults")
        self.token = self.run_cli("token", "create", "--org", org).split()[-1]
        for region in REGIONS:
            await self.call(
                "POST", "/operator/regions", {"id": region, "name": region}, OPERATOR_TOKEN
            )
            for i in range(AGENTS_PER_REGION):
                name = f"{region}-{i + 1}"
                agent = await self.call(
                    "POST", "/operator/agents", {"name": name, "region": region}, OPERATOR_TOKEN
                )
                self.agent_tokens[name] = agent["token"]
        for n in range(TARGETS):
            target = await self.call(
                "POST",
                "/api/v1/targets",
                {
                    "name": f"t{n}",
                    "check": {"type": "http", "url": self.server.url(n), "timeout": TIMEOUT_MS},
                    "interval": INTERVAL,
                },
            )
            await self.call(
                "PUT", f"/api/v1/targets/{target['id']}/regions", {"regions": list(REGIONS)}
            )
            self.targets[target["id"]] = n
        for name in self.agent_tokens:
            self.start_agent(name)
        # Started once every agent has delivered a result: on a loaded machine an agent's
        # start-up (imports, first lease) takes 40 s and more, and slots due meanwhile are
        # missed or late for reasons that are no fault's.
        await wait_for(self.agents_serving, 300, 0.5)
        self.started_at = time.time()

    async def agents_serving(self) -> bool:
        async with await psycopg.AsyncConnection.connect(self.db_url) as conn:
            row = await (
                await conn.execute("SELECT count(DISTINCT agent_id) FROM results")
            ).fetchone()
        return row is not None and row[0] >= len(self.agent_tokens)

    async def close(self) -> None:
        # Agents first (they deliver what they hold while the API is up), then the rest.
        agents = [n for n in self.procs if n in self.agent_tokens]
        for group in (agents, [n for n in self.procs if n not in agents]):
            for name in group:
                if self.procs[name].poll() is None:
                    self.procs[name].send_signal(signal.SIGTERM)
            for name in group:
                try:
                    await asyncio.to_thread(self.procs[name].wait, 20)
                except subprocess.TimeoutExpired:
                    self.procs[name].kill()
        await self.server.stop()
        if self.redis:
            await asyncio.to_thread(self.redis.stop)
        if self.pg:
            await asyncio.to_thread(self.pg.stop)
        if self._servers_dir and not self.keep:
            shutil.rmtree(self._servers_dir, ignore_errors=True)

    def tail_logs(self, lines: int = 30) -> str:
        out = []
        for name, proc in self.procs.items():
            log = (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()
            out.append(f"----- {name} (exit {proc.returncode}), last lines -----")
            out.extend(log[-lines:])
        return "\n".join(out)
