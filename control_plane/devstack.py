"""``vigil dev``: the whole system on one machine, what ``make dev`` runs.

It keeps its state in one folder, ``VIGIL_DEV_DIR`` (default ``.vigil/dev`` under the current
directory, which git ignores):

- ``dev.env`` (mode 0600): the deployment secrets and the demo credentials, generated on the first
  run and reused afterwards, in ``KEY=value`` lines a shell can source;
- ``pg/`` and ``redis/``: the embedded PostgreSQL (database ``vigil``) and Redis;
- ``agent-spool/``: the local agent's buffer of results not yet delivered;
- ``dev.lock``: held while a ``vigil dev`` runs on the folder, so two never share it.

A ``VIGIL_*`` variable set in the environment wins: with ``VIGIL_DATABASE_URL`` or
``VIGIL_REDIS_URL`` that server is used instead of an embedded one. Children (API, worker, agent)
get the resulting environment; their output is printed line by line behind their name. SIGINT or
SIGTERM stops the children, then the embedded servers, and returns 0; a child that dies stops
everything and returns 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import importlib.util
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from control_plane.db.migrate import migrate
from control_plane.db.sql import Queries
from control_plane.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    MissingBinary,
    free_port,
    pg_bin_dir,
    port_is_free,
    redis_server_bin,
)
from control_plane.security import tokens
from control_plane.settings import settings_from_env

DEFAULT_PORT = 8000
DB_NAME = "vigil"
DEMO_ORG_NAME = "Demo"
AGENT_REGION = "default"
AGENT_NAME = "local-dev"
READY_TIMEOUT_S = 90.0
# Covers an API that finishes a lease long-poll (up to 30 s) before it exits.
STOP_TIMEOUT_S = 40.0

# Keys of dev.env beyond the settings variables.
ORG_ID = "VIGIL_DEV_ORG_ID"
API_TOKEN = "VIGIL_DEV_API_TOKEN"
AGENT_TOKEN = "VIGIL_DEV_AGENT_TOKEN"
PG_PORT = "VIGIL_DEV_PG_PORT"
REDIS_PORT = "VIGIL_DEV_REDIS_PORT"

AUTH = Queries("auth")
ORG_EXISTS = "SELECT id FROM orgs WHERE id = %(id)s"
REGION_EXISTS = "SELECT id FROM regions WHERE id = %(id)s"


class DevError(RuntimeError):
    """Something the user has to fix; printed as one message, without a traceback."""


class ChildDied(DevError):
    pass


class _Stop(BaseException):
    """Raised by the SIGINT/SIGTERM handler to unwind to the cleanup (like KeyboardInterrupt)."""


def dev_dir() -> Path:
    return Path(os.environ.get("VIGIL_DEV_DIR") or Path.cwd() / ".vigil" / "dev").resolve()


# --- dev.env -------------------------------------------------------------------------------------


@dataclass
class DevFile:
    path: Path
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DevFile:
        values: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                key, sep, value = line.strip().partition("=")
                if sep and key and not key.startswith("#"):
                    values[key] = value
        return cls(path, values)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# Written by `vigil dev`: this stack's secrets and demo credentials.\n")
            f.write("# Keep it private. Delete the folder to start from scratch.\n")
            f.writelines(f"{k}={v}\n" for k, v in self.values.items())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def _key32() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_secrets(values: dict[str, str]) -> bool:
    """Generate the secrets ``values`` lacks; True when something was generated."""
    before = len(values)
    values.setdefault("VIGIL_TOKEN_KEY", _key32())
    if "VIGIL_SECRET_KEYS" not in values:
        values["VIGIL_SECRET_KEYS"] = f"dev1:{_key32()}"
        values["VIGIL_SECRET_PRIMARY"] = "dev1"
    values.setdefault("VIGIL_OPERATOR_ADMIN_TOKEN", "op_" + secrets.token_urlsafe(32))
    return len(values) != before


def child_env(values: dict[str, str], db_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every child: the caller's, completed from dev.env."""
    env = dict(os.environ)
    if not env.get("VIGIL_SECRET_KEYS"):
        # The key list and its primary id come as a pair, from one place.
        env["VIGIL_SECRET_KEYS"] = values["VIGIL_SECRET_KEYS"]
        env.pop("VIGIL_SECRET_PRIMARY", None)
        if values.get("VIGIL_SECRET_PRIMARY"):
            env["VIGIL_SECRET_PRIMARY"] = values["VIGIL_SECRET_PRIMARY"]
    for key in ("VIGIL_TOKEN_KEY", "VIGIL_OPERATOR_ADMIN_TOKEN"):
        if not env.get(key):
            env[key] = values[key]
    env["VIGIL_DATABASE_URL"] = db_url
    env["VIGIL_REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- database bootstrap --------------------------------------------------------------------------


def ensure_database(admin_url: str, name: str = DB_NAME) -> str:
    """Create database ``name`` on the embedded server if needed; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def _token_row(
    conn: psycopg.AsyncConnection[Any], query: str, key: bytes, token: str | None, kind: str
) -> dict[str, Any] | None:
    """The live row of ``token`` when it is valid under ``key``, else None."""
    prefix = tokens.lookup_prefix(token or "", kind)
    if token is None or prefix is None:
        return None
    row: dict[str, Any] | None = await (await conn.execute(query, {"prefix": prefix})).fetchone()
    return row if row is not None and tokens.verify(key, token, bytes(row["hash"])) else None


async def ensure_demo(db_url: str, key: bytes, values: dict[str, str]) -> list[str]:
    """Make sure the demo org, its API token and the local agent's token in ``values`` work.

    Whatever is missing or no longer valid (fresh database, revoked token, changed token key) is
    created again and written into ``values``; without a ``default`` region there is no agent
    token. Returns what was created.
    """
    from control_plane.domain.agents.schemas import AgentCreate
    from control_plane.domain.agents.service import AgentService
    from control_plane.domain.orgs.service import create_org, create_token

    created: list[str] = []
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        org_id: uuid.UUID | None = None
        if values.get(ORG_ID):
            row = await (await conn.execute(ORG_EXISTS, {"id": values[ORG_ID]})).fetchone()
            org_id = row["id"] if row else None
        if org_id is None:
            org_id = await create_org(conn, DEMO_ORG_NAME)
            values[ORG_ID] = str(org_id)
            created.append(f"org {DEMO_ORG_NAME!r}")
        api = await _token_row(
            conn, AUTH.api_token_by_prefix, key, values.get(API_TOKEN), tokens.API_TOKEN_PREFIX
        )
        if api is None or api["org_id"] != org_id:
            values[API_TOKEN] = (await create_token(conn, key, org_id, "dev")).token
            created.append("API token")
        agent = await _token_row(
            conn, AUTH.agent_by_prefix, key, values.get(AGENT_TOKEN), tokens.AGENT_TOKEN_PREFIX
        )
        if agent is None:
            values.pop(AGENT_TOKEN, None)
            region = await (await conn.execute(REGION_EXISTS, {"id": AGENT_REGION})).fetchone()
            if region is not None:  # an operator may have deleted it
                new = await AgentService(conn, key).create(
                    AgentCreate(name=AGENT_NAME, region=AGENT_REGION)
                )
                values[AGENT_TOKEN] = new.token
                created.append(f"agent {AGENT_NAME!r} in region {AGENT_REGION!r}")
    return created


# --- child processes -----------------------------------------------------------------------------


class Output:
    """Serialised line output: every line is written whole, behind its source's name."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def line(self, source: str, text: str) -> None:
        self.raw(f"{source:>6} | {text}")

    def say(self, text: str) -> None:
        self.line("dev", text)

    def raw(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


class Signals:
    """SIGINT/SIGTERM raise ``_Stop``, except inside ``deferred()`` blocks and once stopping."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False
        self.stopping = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        if self.depth:
            self.pending = True
            return
        self.stopping = True
        raise _Stop

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending and not self.stopping:
                self.stopping = True
                raise _Stop


def _command(script: str, module: str) -> list[str]:
    """The console script next to this interpreter, or the same entry point through it."""
    exe = Path(sys.executable).parent / script
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


class Children:
    def __init__(self, out: Output, signals: Signals) -> None:
        self.out = out
        self.signals = signals
        self.items: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with self.signals.deferred():
            # Own session: a Ctrl-C in the terminal reaches only us, and we stop children in order.
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
            self.items.append(Child(name, proc, pump))
        pump.start()
        shown = [Path(argv[0]).name, *argv[1:]]
        self.out.say(f"started {name} (pid {proc.pid}): {shlex.join(shown)}")

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.out.line(name, raw.decode(errors="replace").rstrip("\r\n"))

    def check(self) -> None:
        for child in self.items:
            code = child.proc.poll()
            if code is not None:
                raise ChildDied(f"{child.name} exited with code {code}; stopping everything")

    def stop_all(self) -> None:
        for child in reversed(self.items):
            if child.proc.poll() is None:
                _killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in reversed(self.items):
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out.say(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
                _killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
            _killpg(child.proc.pid, signal.SIGKILL)  # anything it left behind in its group
        for child in self.items:
            child.pump.join(timeout=5)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _find(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _has_subcommand(name: str) -> bool:
    from control_plane.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return name in action.choices
    return False


def _http_status(url: str, token: str | None = None) -> int | None:
    """GET ``url`` straight (no proxy); its status, or None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with opener.open(req, timeout=2) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


# --- the stack -----------------------------------------------------------------------------------


class DevStack:
    def __init__(self, root: Path, port: int, out: Output, signals: Signals) -> None:
        self.root = root
        self.port_arg = port
        self.out = out
        self.children = Children(out, signals)
        self.pg: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self._lock_fd: int | None = None

    def run(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._check_binaries()
        dev = DevFile.load(self.root / "dev.env")
        if ensure_secrets(dev.values):
            dev.save()
            self.out.say(f"generated secrets in {dev.path}")
        db_url, redis_url = self._start_servers(dev.values)
        dev.save()
        env = child_env(dev.values, db_url, redis_url)
        settings = settings_from_env(env)
        applied = migrate(db_url)
        self.out.say(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
        created = asyncio.run(ensure_demo(db_url, settings.security.token_key, dev.values))
        dev.save()
        if created:
            self.out.say(f"created {', '.join(created)} (saved in {dev.path})")

        port = self._api_port()
        base = f"http://127.0.0.1:{port}"
        serve = [*_command("vigil", "control_plane.cli"), "serve", "--host", "127.0.0.1"]
        self.children.start("api", [*serve, "--port", str(port)], env)
        if _find("control_plane.worker") and _has_subcommand("worker"):
            self.children.start("worker", [*_command("vigil", "control_plane.cli"), "worker"], env)
        else:
            self.out.say("worker skipped: `vigil worker` is not available in this install")
        self._wait_ready(base)
        if AGENT_TOKEN not in dev.values:
            self.out.say(f"agent skipped: region {AGENT_REGION!r} does not exist")
        elif _find("probe_agent.cli"):
            # The token goes in the environment, not on the command line where ps shows it.
            agent_env = {**env, "VIGIL_AGENT_TOKEN": dev.values[AGENT_TOKEN]}
            spool = str(self.root / "agent-spool")
            agent = [*_command("vigil-agent", "probe_agent.cli"), "--control-plane", base]
            self.children.start("agent", [*agent, "--spool-dir", spool], agent_env)
        else:
            self.out.say("agent skipped: probe_agent.cli is not available in this install")
        self._banner(base, dev)
        while True:
            self.children.check()
            time.sleep(0.25)

    def shutdown(self) -> None:
        self.children.stop_all()
        for name, server in (("redis", self.redis), ("postgres", self.pg)):
            if server is not None:
                server.stop()
                self.out.say(f"stopped {name}")
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    def _lock(self) -> None:
        fd = os.open(self.root / "dev.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DevError(
                f"another `vigil dev` is running with {self.root}; stop it first, or set "
                "VIGIL_DEV_DIR to another folder"
            ) from None
        self._lock_fd = fd

    def _check_binaries(self) -> None:
        """Say everything that is missing at once, before starting anything."""
        missing: list[str] = []
        for var, find in (
            ("VIGIL_DATABASE_URL", pg_bin_dir),
            ("VIGIL_REDIS_URL", redis_server_bin),
        ):
            if not os.environ.get(var):
                try:
                    find()
                except MissingBinary as exc:
                    missing.append(str(exc))
        if missing:
            raise MissingBinary("\n".join(missing))

    def _start_servers(self, values: dict[str, str]) -> tuple[str, str]:
        db_url = os.environ.get("VIGIL_DATABASE_URL")
        if db_url:
            self.out.say("using PostgreSQL from VIGIL_DATABASE_URL")
        else:
            self.pg = EmbeddedPostgres(self.root / "pg", port=int(values.get(PG_PORT) or 0))
            db_url = ensure_database(self.pg.start())
            values[PG_PORT] = str(self.pg.port)
            self.out.say(
                f"started postgres (pid {self.pg.pid}): {db_url}, data in {self.pg.data_dir}"
            )
        redis_url = os.environ.get("VIGIL_REDIS_URL")
        if redis_url:
            self.out.say("using Redis from VIGIL_REDIS_URL")
        else:
            self.redis = EmbeddedRedis(self.root / "redis", port=int(values.get(REDIS_PORT) or 0))
            redis_url = self.redis.start()
            values[REDIS_PORT] = str(self.redis.port)
            self.out.say(f"started redis (pid {self.redis.pid}): {redis_url}")
        return db_url, redis_url

    def _api_port(self) -> int:
        raw = os.environ.get("VIGIL_PORT", "")
        try:
            wanted = self.port_arg or int(raw or 0)
        except ValueError:
            raise DevError(f"VIGIL_PORT={raw!r} is not a port number") from None
        if wanted:
            if not port_is_free(wanted):
                raise DevError(f"port {wanted} is in use; choose another with --port or VIGIL_PORT")
            return wanted
        return DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()

    def _wait_ready(self, base: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.children.check()
            if _http_status(f"{base}/readyz") == 200:
                return
            time.sleep(0.2)
        raise DevError(f"the API did not answer 200 on {base}/readyz in {READY_TIMEOUT_S:.0f}s")

    def _banner(self, base: str, dev: DevFile) -> None:
        token, operator = dev.values[API_TOKEN], os.environ.get("VIGIL_OPERATOR_ADMIN_TOKEN")
        operator = operator or dev.values["VIGIL_OPERATOR_ADMIN_TOKEN"]
        docs = f"{base}/docs" if _http_status(f"{base}/docs") == 200 else None
        auth = shlex.quote(f"Authorization: Bearer {token}")
        body = '{"name": "example.com", "check": {"type": "http", "url": "https://example.com"}}'
        lines = [
            "",
            "Vigil is running.",
            f"  API             {base}",
            f"  API docs        {docs}" if docs else f"  OpenAPI         {base}/api/openapi.json",
            f"  API token       {token}   (org {DEMO_ORG_NAME!r}, id {dev.values[ORG_ID]})",
            f"  Operator token  {operator}",
            f"  State           {self.root}  (secrets and tokens in {dev.path.name})",
            "",
            "Create an HTTP target:",
            f"  curl -sS -X POST {base}/api/v1/targets -H {auth} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}",
            "List your targets:",
            f"  curl -sS {base}/api/v1/targets -H {auth}",
        ]
        if _http_status(f"{base}/operator/agents", operator) == 200:
            lines += [
                "List the probe agents (operator):",
                f"  curl -sS {base}/operator/agents "
                f"-H {shlex.quote(f'Authorization: Bearer {operator}')}",
            ]
        lines += ["", "Press Ctrl-C to stop everything.", ""]
        for line in lines:
            self.out.raw(line)


def run_dev(args: argparse.Namespace) -> int:
    out = Output()
    signals = Signals()
    stack = DevStack(dev_dir(), int(getattr(args, "port", 0) or 0), out, signals)
    previous = {s: signal.signal(s, signals.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return stack.run()
    except _Stop:
        out.say("stopping")
        return 0
    except MissingBinary as exc:
        print(f"vigil dev needs software that is not installed:\n{exc}", file=sys.stderr)
        return 1
    except (RuntimeError, psycopg.OperationalError) as exc:
        # DevError, ChildDied, or an embedded server or the database that would not start.
        print(f"vigil dev: {exc}", file=sys.stderr)
        return 1
    finally:
        signals.stopping = True
        try:
            stack.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
