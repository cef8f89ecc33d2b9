"""Real Vigil processes for end-to-end tests: ``vigil serve``, ``vigil worker``, ``vigil-agent``.

Each process gets the test's database clone and Redis prefix through the same environment
variables a deployment uses, logs to a file under the test's tmp dir (printed when the system
stops, so a failing test shows what every process said), and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import make_org
from tests.stack import OPERATOR_TOKEN, settings_env, test_settings

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(cond: Callable[[], Awaitable[bool]], within: float, step: float = 0.5) -> None:
    deadline = time.monotonic() + within
    while True:
        if await cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(step)


@dataclass
class System:
    db_url: str
    redis_url: str
    workdir: Path
    base_url: str = ""
    token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = test_settings(self.db_url, self.redis_url)
        self.env = {**os.environ, **settings_env(settings)}
        for var in ("VIGIL_AGENT_CONTROL_PLANE", "VIGIL_AGENT_TOKEN"):
            self.env.pop(var, None)

    def spawn(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        self.procs[name] = proc
        return proc

    async def start_control_plane(self) -> None:
        port = free_port()
        self.spawn("api", str(BIN / "vigil"), "serve", "--port", str(port))
        self.base_url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{self.base_url}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, 30, 0.2)
        _, self.token = await make_org(self.db_url, "E2E")

    def start_worker(self) -> None:
        self.spawn("worker", str(BIN / "vigil"), "worker")

    async def start_agent(self, region: str, name: str | None = None) -> subprocess.Popen[bytes]:
        name = name or f"agent-{region}"
        if region != "default":
            await self.call(
                "POST",
                "/operator/regions",
                {"id": region, "name": region},
                OPERATOR_TOKEN,
                ok=(201, 409),
            )
        agent = await self.call(
            "POST", "/operator/agents", {"name": name, "region": region}, OPERATOR_TOKEN
        )
        return self.spawn(
            name,
            str(BIN / "vigil-agent"),
            "--control-plane",
            self.base_url,
            "--token",
            agent["token"],
            "--spool-dir",
            str(self.workdir / f"spool-{name}"),
            "--lease-wait-ms",
            "5000",
            "--batch-age-ms",
            "200",
        )

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.base_url + path, json=body, headers=headers) as resp,
        ):
            text = await resp.text()
            assert resp.status in ok, (method, path, resp.status, text)
            return await resp.json() if text else None

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        return await self.call(method, path, body)

    async def settle(self, seconds: float = 3.0) -> None:
        """Give the worker time to evaluate what was just ingested."""
        await asyncio.sleep(seconds)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log = (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()
            print(f"----- {name} (exit {proc.returncode}), last lines -----")
            print("\n".join(log[-40:]))
