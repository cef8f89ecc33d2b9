"""Runs the whole local system: see the package docstring (``control_plane/dev/__init__.py``)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib.util
import os
import shlex
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from control_plane.db.migrate import migrate
from control_plane.settings import settings_from_env

from .embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    MissingBinary,
    free_port,
    pg_bin_dir,
    port_is_free,
    redis_server_bin,
)
from .envfile import (
    AGENT_TOKEN,
    API_TOKEN,
    API_URL,
    DB_URL,
    ORG_ID,
    PG_PORT,
    REDIS_PORT,
    REDIS_URL,
    DevFile,
    child_env,
    dev_dir,
    ensure_secrets,
)
from .seed import (
    AGENT_REGION,
    DEMO_EMAIL,
    DEMO_ORG_NAME,
    DEMO_PASSWORD,
    ensure_database,
    ensure_demo,
    ensure_demo_status_page,
    private_here,
)
from .supervisor import Children, DevError, Output, Signals, _command, _Stop

DEFAULT_PORT = 8000
READY_TIMEOUT_S = 90.0


def _find(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _external(from_env: str | None, ours: str | None) -> str | None:
    """The server URL the environment names, unless it is the one this stack embeds."""
    return from_env if from_env and from_env != ours else None


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
        dev.values[API_URL] = base
        dev.save()
        serve = [*_command("vigil", "control_plane.cli"), "serve", "--host", "127.0.0.1"]
        self.children.start("api", [*serve, "--port", str(port)], env)
        self.children.start("worker", [*_command("vigil", "control_plane.cli"), "worker"], env)
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
        private = asyncio.run(private_here(db_url, dev.values[ORG_ID]))
        self.status_page = asyncio.run(ensure_demo_status_page(db_url, dev.values[ORG_ID]))
        self._banner(base, dev, private)
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
        # A shell that sourced dev.env (``vigil dev env``) carries our own embedded servers' URLs:
        # those are started here as usual, not taken for servers someone else runs.
        db_url = _external(os.environ.get("VIGIL_DATABASE_URL"), values.get(DB_URL))
        if db_url:
            self.out.say("using PostgreSQL from VIGIL_DATABASE_URL")
        else:
            self.pg = EmbeddedPostgres(self.root / "pg", port=int(values.get(PG_PORT) or 0))
            db_url = ensure_database(self.pg.start())
            values[PG_PORT] = str(self.pg.port)
            values[DB_URL] = db_url
            self.out.say(
                f"started postgres (pid {self.pg.pid}): {db_url}, data in {self.pg.data_dir}"
            )
        redis_url = _external(os.environ.get("VIGIL_REDIS_URL"), values.get(REDIS_URL))
        if redis_url:
            self.out.say("using Redis from VIGIL_REDIS_URL")
        else:
            self.redis = EmbeddedRedis(self.root / "redis", port=int(values.get(REDIS_PORT) or 0))
            redis_url = self.redis.start()
            values[REDIS_PORT] = str(self.redis.port)
            values[REDIS_URL] = redis_url
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

    def _private_lines(self, base: str, dev: DevFile, operator: str, private: bool) -> list[str]:
        """What the local region may reach, and how to change it."""
        grant = f"{base}/operator/regions/{AGENT_REGION}/grants/{dev.values[ORG_ID]}"
        op = shlex.quote(f"Authorization: Bearer {operator}")
        set_to = f"curl -sS -X PUT {grant} -H {op} -H 'Content-Type: application/json' -d "
        if private:
            return [
                f"Private targets: region {AGENT_REGION!r} may probe this machine and your network "
                f"(127.0.0.1, 10.0.0.0/8, …) for org {DEMO_ORG_NAME!r},",
                "so you can monitor your own services (a deployment blocks them by default). "
                "To block them here too:",
                "  " + set_to + shlex.quote('{"allow_private_targets": false}'),
            ]
        return [
            f"Private targets are blocked in region {AGENT_REGION!r} (the SSRF guard is on). "
            "To monitor this machine (127.0.0.1, 10.0.0.0/8, …):",
            "  " + set_to + shlex.quote('{"allow_private_targets": true}'),
        ]

    def _banner(self, base: str, dev: DevFile, private: bool) -> None:
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
            f"  Sign in         {DEMO_EMAIL} / {dev.values.get(DEMO_PASSWORD, '(see dev.env)')}"
            f"   (POST {base}/api/auth/sign-in)",
            f"  State           {self.root}  (secrets and tokens in {dev.path.name})",
            *(
                [f"  Status page     {base}{self.status_page}  (the demo org's targets)"]
                if getattr(self, "status_page", None)
                else []
            ),
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
        lines += self._private_lines(base, dev, operator, private)
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
