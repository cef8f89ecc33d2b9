"""``vigil dev`` end to end: the real command, its embedded PostgreSQL/Redis and its children.

Each test runs ``.venv/bin/vigil dev`` as a subprocess on its own state folder (``VIGIL_DEV_DIR``)
with no database or Redis URL set, so it embeds both. The folder lives under the project's
git-ignored ``.vigil/`` rather than the pytest tmp dir, because as root the embedded PostgreSQL
runs as ``postgres``, which cannot enter pytest's 0700 tmp folders.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from control_plane.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, pid_alive
from control_plane.dev.envfile import DevFile, child_env, ensure_secrets
from control_plane.dev.seed import ensure_demo, private_here
from control_plane.settings import settings_from_env
from tests.stack import TOKEN_KEY

ROOT = Path(__file__).resolve().parents[3]
VIGIL = Path(sys.executable).parent / "vigil"
KEEP_ENV = {"VIGIL_PG_BIN", "VIGIL_REDIS_SERVER"}
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
WAIT_S = 180.0
STARTED = re.compile(r"started (\w+) \(pid (\d+)\)")


def clean_env() -> dict[str, str]:
    """This environment without Vigil's settings and proxies (a newcomer's shell)."""
    return {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("VIGIL_") or k in KEEP_ENV) and k not in PROXY_VARS
    }


class DevRun:
    """One ``vigil dev`` process; its output is collected line by line as it comes."""

    def __init__(self, devdir: Path) -> None:
        env = clean_env()
        env["VIGIL_DEV_DIR"] = str(devdir)
        self.lines: list[str] = []
        self.eof = False
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [str(VIGIL), "dev", "--port", str(free_port())],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def wait_for(self, pred: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                hit = next((line for line in self.lines if pred(line)), None)
                if hit is not None:
                    return hit
                if self.eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1.0))
        raise AssertionError(f"line never printed; output so far:\n{self.output()}")

    def banner(self) -> None:
        self.wait_for(lambda line: line.startswith("Press Ctrl-C"))

    def curl_lines(self) -> list[str]:
        with self.cond:
            return [line.strip() for line in self.lines if line.strip().startswith("curl ")]

    def pids(self) -> dict[str, int]:
        with self.cond:
            found = (STARTED.search(line) for line in self.lines)
            return {m[1]: int(m[2]) for m in found if m}

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=WAIT_S)
        self.wait_for(lambda line: "stopped postgres" in line)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def curl(line: str) -> tuple[int, object]:
    """Run a printed curl line as pasted (or, without curl, send what it says); status, JSON."""
    argv = shlex.split(line)
    assert argv[0] == "curl", line
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    if shutil.which("curl"):
        done = subprocess.run(
            [*argv, "-w", "\n%{http_code}"], capture_output=True, text=True, env=env, check=True
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body) if body else None
    method, url, headers, data = "GET", "", {}, None
    it = iter(argv[1:])
    for arg in it:
        if arg == "-X":
            method = next(it)
        elif arg == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(it).encode()
            method = "POST" if method == "GET" else method
        elif not arg.startswith("-"):
            url = arg
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def devdir() -> Iterator[Path]:
    base = ROOT / ".vigil"
    base.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="devstack-test-", dir=base))
    path.chmod(0o755)  # the embedded PostgreSQL may run as another user
    try:
        yield path
    finally:
        EmbeddedPostgres(path / "pg").stop()
        EmbeddedRedis(path / "redis").stop()
        shutil.rmtree(path, ignore_errors=True)


def expected_children() -> set[str]:
    names = {"postgres", "redis", "api"}
    if importlib.util.find_spec("control_plane.worker"):
        names.add("worker")
    if importlib.util.find_spec("probe_agent.cli"):
        names.add("agent")
    return names


# Values that hold a port the test picks anew for each run.
PORT_BOUND = {"VIGIL_DEV_API_URL", "VIGIL_DATABASE_URL", "VIGIL_REDIS_URL"}


def without_ports(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if not k.endswith("_PORT") and k not in PORT_BOUND}


def dev_env_shell(devdir: Path) -> dict[str, str]:
    """The environment a shell has after ``eval "$(vigil dev env)"``."""
    done = subprocess.run(
        [str(VIGIL), "dev", "env"],
        env={**clean_env(), "VIGIL_DEV_DIR": str(devdir)},
        capture_output=True,
        text=True,
        check=True,
    )
    shell = subprocess.run(
        ["bash", "-c", f"{done.stdout}\nenv -0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in shell.stdout.split("\0") if "=" in line)


def assert_all_gone(pids: dict[str, int]) -> None:
    alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert not alive, f"still running after vigil dev exited: {alive}"


@pytest.mark.e2e
def test_dev_stack_serves_printed_curls_stops_on_sigint_and_reuses_its_data(devdir: Path) -> None:
    first = DevRun(devdir)
    try:
        first.banner()
        pids = first.pids()
        assert expected_children() <= set(pids), first.output()
        create, list_targets = first.curl_lines()[:2]
        assert "-X POST" in create and "/api/v1/targets" in create, create

        status, created = curl(create)
        assert status == 201, created
        assert isinstance(created, dict)
        status, listed = curl(list_targets)
        assert status == 200, listed
        assert isinstance(listed, dict)
        assert [t["id"] for t in listed["items"]] == [created["id"]]

        env_file = devdir / "dev.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        saved = DevFile.load(env_file).values
        assert saved["VIGIL_DEV_API_TOKEN"] in create
        assert saved["VIGIL_DEV_AGENT_TOKEN"].startswith("sm_agent_")

        # A shell that evaluates `vigil dev env` reaches the stack with the CLI and the README's
        # shorthands.
        shell = dev_env_shell(devdir)
        assert shell["TOKEN"] == saved["VIGIL_DEV_API_TOKEN"]
        assert shell["VIGIL"] in create
        made = subprocess.run(
            [str(VIGIL), "org", "create", "From the shell"],
            env=shell,
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        assert uuid.UUID(made.stdout.strip())

        # A newcomer monitors their own box: the local region lends the demo org its network
        # (the banner says so), so a target on 127.0.0.1 is accepted and checked `up`.
        assert "Private targets: region 'default' may probe this machine" in first.output()
        local = create.replace("https://example.com", f"{shell['VIGIL']}/healthz").replace(
            '"example.com"', '"my box"'
        )
        local = local.replace('"check":', '"interval": 10, "check":')
        status, mine = curl(local)
        assert status == 201, mine
        assert isinstance(mine, dict)
        results_line = f"curl -sS {shell['VIGIL']}/api/v1/targets/{mine['id']}/results -H " + (
            shlex.quote(f"Authorization: Bearer {shell['TOKEN']}")
        )
        deadline = time.monotonic() + 40
        statuses: list[str] = []
        while time.monotonic() < deadline and not statuses:
            time.sleep(1)
            _, page = curl(results_line)
            assert isinstance(page, dict)
            statuses = [r["status"] for r in page["items"]]
        assert statuses and statuses[0] == "up", statuses

        assert first.interrupt() == 0, first.output()
        assert_all_gone(pids)
    finally:
        first.kill()

    second = DevRun(devdir)
    try:
        second.banner()
        assert "created org" not in second.output()
        assert without_ports(DevFile.load(devdir / "dev.env").values) == without_ports(saved)
        list_again = second.curl_lines()[1]
        assert saved["VIGIL_DEV_API_TOKEN"] in list_again
        status, listed = curl(list_again)
        assert status == 200, listed
        assert isinstance(listed, dict)
        assert [t["name"] for t in listed["items"]] == [created["name"], "my box"]
        assert listed["items"][0]["id"] == created["id"]

        pids = second.pids()
        assert second.interrupt() == 0, second.output()
        assert_all_gone(pids)
    finally:
        second.kill()


@pytest.mark.e2e
def test_dev_stack_stops_everything_and_fails_when_a_child_dies(devdir: Path) -> None:
    run = DevRun(devdir)
    try:
        run.banner()
        pids = run.pids()
        os.kill(pids["api"], signal.SIGKILL)
        assert run.proc.wait(timeout=WAIT_S) == 1
        run.wait_for(lambda line: "api exited with code" in line)
        run.wait_for(lambda line: "stopped postgres" in line)
        assert_all_gone(pids)
    finally:
        run.kill()


def test_dev_env_secrets_are_generated_once_and_the_callers_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("VIGIL_TOKEN_KEY", "VIGIL_SECRET_KEYS", "VIGIL_SECRET_PRIMARY"):
        monkeypatch.delenv(name, raising=False)
    values: dict[str, str] = {}
    assert ensure_secrets(values) is True
    generated = dict(values)
    assert ensure_secrets(values) is False
    assert values == generated

    env = child_env(values, "postgresql://db/vigil", "redis://r/0")
    settings = settings_from_env(env)
    assert settings.security.primary_key_id == "dev1"
    assert settings.security.operator_admin_token == values["VIGIL_OPERATOR_ADMIN_TOKEN"]
    assert settings.database.url == "postgresql://db/vigil"
    assert settings.notify.allow_private  # `make dev` delivers alerts to local receivers

    mine = base64.b64encode(b"m" * 32).decode()
    monkeypatch.setenv("VIGIL_SECRET_KEYS", f"mine:{mine}")
    monkeypatch.setenv("VIGIL_OPERATOR_ADMIN_TOKEN", "my-operator-token")
    settings = settings_from_env(child_env(values, "postgresql://db/vigil", "redis://r/0"))
    assert settings.security.sealing_keys == {"mine": b"m" * 32}
    assert settings.security.primary_key_id == "mine"
    assert settings.security.operator_admin_token == "my-operator-token"


async def test_demo_credentials_are_created_once_and_replaced_when_they_stop_working(
    db_url: str,
) -> None:
    values: dict[str, str] = {}
    created = await ensure_demo(db_url, TOKEN_KEY, values)
    assert len(created) == 5, created
    assert "user 'demo@vigil.local'" in created and values["VIGIL_DEV_DEMO_PASSWORD"]
    assert created[-1] == "private targets in region 'default' for the demo org"
    first = dict(values)
    assert first["VIGIL_DEV_API_TOKEN"].startswith("vgl_")
    assert first["VIGIL_DEV_AGENT_TOKEN"].startswith("sm_agent_")

    assert await ensure_demo(db_url, TOKEN_KEY, values) == []
    assert values == first

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE api_tokens SET revoked_at = now()")
        await conn.execute("UPDATE agents SET revoked_at = now()")
    created = await ensure_demo(db_url, TOKEN_KEY, values)
    assert created == ["API token", "agent 'local-dev' in region 'default'"]
    assert values["VIGIL_DEV_ORG_ID"] == first["VIGIL_DEV_ORG_ID"]
    assert values["VIGIL_DEV_API_TOKEN"] != first["VIGIL_DEV_API_TOKEN"]
    assert values["VIGIL_DEV_AGENT_TOKEN"] != first["VIGIL_DEV_AGENT_TOKEN"]

    # Under another token key nothing stored verifies: new tokens, still the same org.
    created = await ensure_demo(db_url, b"x" * 32, values)
    assert created == ["API token", "agent 'local-dev' in region 'default'"]
    assert values["VIGIL_DEV_ORG_ID"] == first["VIGIL_DEV_ORG_ID"]


async def test_the_local_region_is_opened_to_the_demo_org_once(db_url: str) -> None:
    values: dict[str, str] = {}
    await ensure_demo(db_url, TOKEN_KEY, values)
    assert await private_here(db_url, values["VIGIL_DEV_ORG_ID"]) is True
    # The developer blocks it; the next `make dev` does not open it again.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE region_grants SET allow_private_targets = false")
    assert await ensure_demo(db_url, TOKEN_KEY, values) == []
    assert await private_here(db_url, values["VIGIL_DEV_ORG_ID"]) is False
    # Only the demo org is given the network, not every org of the deployment.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        grants = await (await conn.execute("SELECT count(*) FROM region_grants")).fetchone()
    assert grants is not None and grants[0] == 1
