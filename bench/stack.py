"""The Vigil under test: PostgreSQL and Redis (embedded under ``.vigil/bench/`` unless
``VIGIL_DATABASE_URL`` / ``VIGIL_REDIS_URL`` are set), a fresh database per scenario, the real
``vigil serve`` / ``vigil worker`` / ``vigil-agent`` processes, and the seeding of orgs, agents
and (in bulk, with SQL) targets.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench import statements
from bench.proc import Processes
from control_plane.db.migrate import migrate
from control_plane.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from control_plane.domain.orgs.service import create_org, create_token
from control_plane.domain.targets.codec import seal_check
from control_plane.security.sealing import Sealer
from shared.checks import CheckSpec, check_kind

BIN = Path(sys.executable).parent
TOKEN_KEY = secrets.token_bytes(32)
SEALING_KEY = secrets.token_bytes(32)
OPERATOR_TOKEN = secrets.token_urlsafe(24)


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass
class Servers:
    """PostgreSQL and Redis for the whole benchmark run."""

    root: Path
    fast: bool = False
    # BENCH_PG_STATEMENTS=1: pg_stat_statements loaded, and in every scenario's database.
    statements: bool = False
    admin_url: str = ""
    redis_url: str = ""
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    databases: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.admin_url = os.environ.get("VIGIL_DATABASE_URL", "")
        self.redis_url = os.environ.get("VIGIL_REDIS_URL", "")
        if not self.admin_url:
            # Autovacuum looks at the database every 5 s rather than every minute, as README
            # advises for a deployment: the hot tables' dead versions then stay bounded.
            settings: tuple[str, ...] = ("autovacuum_naptime=5s",)
            if self.statements:
                settings += statements.SETTINGS
            # A diagnostic: the plans of statements slower than this many ms, in the server's
            # log (``pg.log`` beside its data directory).
            slow_ms = os.environ.get("BENCH_PG_EXPLAIN_MS", "")
            if slow_ms:
                preload = [s for s in settings if s.startswith("shared_preload_libraries=")]
                libs = [*(p.split("=", 1)[1] for p in preload), "auto_explain"]
                settings = (
                    *(s for s in settings if s not in preload),
                    "shared_preload_libraries=" + ",".join(libs),
                    f"auto_explain.log_min_duration={int(slow_ms)}",
                    # BENCH_PG_EXPLAIN_ANALYZE=1: with each node's actual rows and times
                    # (every statement is instrumented then: slower, a diagnostic only).
                    "auto_explain.log_analyze="
                    + ("on" if os.environ.get("BENCH_PG_EXPLAIN_ANALYZE") == "1" else "off"),
                    "auto_explain.log_nested_statements=on",
                )
            self.pg = EmbeddedPostgres(self.root / "pg", fast=self.fast, settings=settings)
            self.admin_url = self.pg.start()
        if not self.redis_url:
            self.redis = EmbeddedRedis(self.root / "redis", persist=False)
            self.redis_url = self.redis.start()

    def pids(self) -> dict[str, int]:
        """The servers this run started (external ones cannot be measured here)."""
        out: dict[str, int] = {}
        if self.pg is not None and self.pg.pid:
            out["postgres"] = self.pg.pid
        if self.redis is not None and self.redis.pid:
            out["redis"] = self.redis.pid
        return out

    def new_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        url = _with_database(self.admin_url, name)
        migrate(url)
        if self.statements:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return url

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.databases:
            self.databases.remove(name)

    def stop(self) -> None:
        try:
            for name in list(self.databases):
                self.drop_database(name)
        finally:
            if self.redis is not None:
                self.redis.stop()
            if self.pg is not None:
                self.pg.stop()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class Vigil:
    """One scenario's Vigil: its own database, Redis prefix and processes."""

    servers: Servers
    name: str
    folder: Path
    procs: Processes
    db_url: str = ""
    base_url: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db_url = self.servers.new_database(f"vigil_bench_{self.name}")
        self.env = {
            **os.environ,
            "VIGIL_DATABASE_URL": self.db_url,
            "VIGIL_REDIS_URL": self.servers.redis_url,
            "VIGIL_REDIS_PREFIX": f"bench-{self.name}-{uuid.uuid4().hex[:8]}:",
            "VIGIL_TOKEN_KEY": _b64(TOKEN_KEY),
            "VIGIL_SECRET_KEYS": f"bench:{_b64(SEALING_KEY)}",
            "VIGIL_OPERATOR_ADMIN_TOKEN": OPERATOR_TOKEN,
            "VIGIL_ALLOW_PRIVATE_TARGETS": "1",
        }
        for var in ("VIGIL_AGENT_CONTROL_PLANE", "VIGIL_AGENT_TOKEN"):
            self.env.pop(var, None)

    # --- processes -------------------------------------------------------------------------

    def start_api(self, workers: int = 1) -> str:
        """``workers``: uvicorn processes (``vigil serve --workers``); the "api" process's CPU
        counts them all (they are its children)."""
        port = free_port()
        argv = [str(BIN / "vigil"), "serve", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        self.procs.start("api", argv, self.env)
        self.base_url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{self.base_url}/readyz", self.procs)
        return self.base_url

    def start_worker(self, nice: int = 0) -> None:
        """``nice``: the worker's niceness (``nice -n``, which execs: the pid is the worker's)."""
        wrap = ["nice", "-n", str(nice)] if nice else []
        self.procs.start("worker", [*wrap, str(BIN / "vigil"), "worker"], self.env)

    def start_agent(
        self,
        token: str,
        name: str = "agent",
        extra: Sequence[str] = (),
        wrap: Sequence[str] = (),
    ) -> int:
        """``wrap``: a command prefix (the slow-dns variant's resolv.conf namespace)."""
        spool = self.folder / f"spool-{name}-{uuid.uuid4().hex[:6]}"
        env = {**self.env, "VIGIL_AGENT_TOKEN": token}
        argv = [
            *wrap,
            str(BIN / "vigil-agent"),
            "--control-plane",
            self.base_url,
            "--spool-dir",
            str(spool),
            *extra,
        ]
        return self.procs.start(name, argv, env).pid

    def pids(self, *names: str) -> dict[str, int]:
        out = {n: self.procs.pid(n) for n in names}
        out.update(self.servers.pids())
        return out

    def close(self) -> None:
        self.procs.stop_all()
        self.servers.drop_database(f"vigil_bench_{self.name}")

    # --- seeding ----------------------------------------------------------------------------

    async def org(self, name: str = "Bench") -> tuple[uuid.UUID, str]:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            org_id = await create_org(conn, name)
            token = await create_token(conn, TOKEN_KEY, org_id, "bench")
        return org_id, token.token

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.base_url + path, json=body, headers=headers) as resp,
        ):
            text = await resp.text()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {text}")
            return msgspec.json.decode(text) if text else None

    async def region(self, region: str) -> None:
        """``region`` through the operator API, unless it exists."""
        if region == "default":
            return
        try:
            await self.call(
                "POST", "/operator/regions", OPERATOR_TOKEN, {"id": region, "name": region}
            )
        except RuntimeError as exc:
            if " 409 " not in str(exc):
                raise

    async def agent_token(self, region: str = "default", name: str = "bench") -> str:
        """A new agent of ``region`` (created if needed) through the operator API."""
        await self.region(region)
        made = await self.call(
            "POST", "/operator/agents", OPERATOR_TOKEN, {"name": name, "region": region}
        )
        token: str = made["token"]
        return token

    async def bulk_targets(
        self,
        org_id: uuid.UUID,
        specs: Sequence[CheckSpec],
        *,
        region: str = "default",
        interval: int = 60,
        confirmations: int = 2,
    ) -> list[uuid.UUID]:
        """Targets straight into the tables (COPY), as the API would store them; the
        ``target_regions`` trigger creates their schedules."""
        sealer = Sealer({"bench": SEALING_KEY}, "bench")
        ids = [uuid.uuid4() for _ in specs]
        async with await psycopg.AsyncConnection.connect(self.db_url) as conn:
            async with conn.cursor() as cur:
                cols = (
                    "id, org_id, name, kind, spec, interval_secs, alert_confirmations, write_source"
                )
                async with cur.copy(f"COPY targets ({cols}) FROM STDIN") as copy:
                    for n, (tid, spec) in enumerate(zip(ids, specs, strict=True)):
                        public, sealed = seal_check(sealer, org_id, tid, spec)
                        assert not sealed, "bench targets carry no secrets"
                        await copy.write_row(
                            (
                                tid,
                                org_id,
                                f"bench-{n}",
                                check_kind(spec),
                                Jsonb(public),
                                interval,
                                confirmations,
                                "api",
                            )
                        )
                await cur.execute(
                    "INSERT INTO target_regions (target_id, region_id) "
                    "SELECT unnest(%s::uuid[]), %s",
                    (ids, region),
                )
            await conn.commit()
            # As autovacuum would soon: plans for a table that just grew from empty are poor.
            await conn.set_autocommit(True)
            for table in ("targets", "target_regions", "schedules"):
                await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        return ids


def _wait_ready(url: str, procs: Processes, within: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        procs.check()
        try:
            with opener.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {within:.0f} s")
