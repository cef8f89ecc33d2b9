"""The test stack: real PostgreSQL and Redis, embedded unless URLs are given.

``VIGIL_TEST_DATABASE_URL`` / ``VIGIL_TEST_REDIS_URL`` (or ``VIGIL_DATABASE_URL`` /
``VIGIL_REDIS_URL``) point the suite at existing servers; otherwise it starts its own in
``.vigil/test-stack``. A template database is migrated once per session and every test gets a
fresh clone of it (``CREATE DATABASE … TEMPLATE``), so tests are isolated and fast.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from control_plane.db.migrate import migrate
from control_plane.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from control_plane.settings import (
    ApiSettings,
    DatabaseSettings,
    RedisSettings,
    SecuritySettings,
    Settings,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN_KEY = b"t" * 32
SEALING_KEYS = {"k1": b"1" * 32, "k2": b"2" * 32}
OPERATOR_TOKEN = "operator-secret-for-tests"


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@dataclass
class Stack:
    admin_url: str
    redis_url: str
    template: str = ""
    _pg: EmbeddedPostgres | None = None
    _redis: EmbeddedRedis | None = None
    _dir: Path | None = None
    clones: list[str] = field(default_factory=list)
    # The next test's clone is made on a thread while the current test runs: a ``CREATE DATABASE
    # … TEMPLATE`` takes 0.4-0.7 s of mostly waiting, which every test otherwise spends in its
    # setup. Each test still gets a clone of its own, never used before.
    _ahead: deque[Future[str]] = field(default_factory=deque)
    _maker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="clone")
    )

    @classmethod
    def start(cls) -> Stack:
        db_url = os.environ.get("VIGIL_TEST_DATABASE_URL") or os.environ.get("VIGIL_DATABASE_URL")
        redis_url = os.environ.get("VIGIL_TEST_REDIS_URL") or os.environ.get("VIGIL_REDIS_URL")
        base = ROOT / ".vigil" / f"test-stack-{os.getpid()}"
        pg = redis = None
        if not db_url:
            pg = EmbeddedPostgres(base / "pg", fast=True)
            db_url = pg.start()
        if not redis_url:
            redis = EmbeddedRedis(base / "redis", persist=False)
            redis_url = redis.start()
        stack = cls(
            admin_url=db_url,
            redis_url=redis_url,
            _pg=pg,
            _redis=redis,
            _dir=base if (pg or redis) else None,
        )
        stack._make_template()
        return stack

    def _make_template(self) -> None:
        self.template = f"vigil_tpl_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        migrate(with_database(self.admin_url, self.template))

    def clone(self) -> str:
        """A fresh database cloned from the template: the one made ahead, and the next one
        started."""
        made = self._ahead.popleft() if self._ahead else self._maker.submit(self._create)
        self._ahead.append(self._maker.submit(self._create))
        return made.result()

    def _create(self) -> str:
        name = f"vigil_t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        self.clones.append(name)
        return with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.clones:
            self.clones.remove(name)

    def close(self) -> None:
        self._maker.shutdown(wait=True)  # the clone made ahead lands in ``clones``, dropped here
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for name in [*self.clones, self.template]:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        finally:
            if self._pg:
                self._pg.stop()
            if self._redis:
                self._redis.stop()
            if self._dir:
                shutil.rmtree(self._dir, ignore_errors=True)


def test_settings(
    db_url: str,
    redis_url: str,
    *,
    operator_token: str | None = OPERATOR_TOKEN,
    allow_private: bool = True,
) -> Settings:
    return Settings(
        database=DatabaseSettings(url=db_url, pool_min=1, pool_max=5),
        redis=RedisSettings(url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}:"),
        security=SecuritySettings(
            token_key=TOKEN_KEY,
            sealing_keys=dict(SEALING_KEYS),
            primary_key_id="k1",
            operator_admin_token=operator_token,
            allow_private_targets=allow_private,
        ),
        api=ApiSettings(),
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a real process (`vigil serve`, worker, agent) use ``settings``."""
    keys = ",".join(
        f"{k}:{base64.b64encode(v).decode()}" for k, v in settings.security.sealing_keys.items()
    )
    env = {
        "VIGIL_DATABASE_URL": settings.database.url,
        "VIGIL_REDIS_URL": settings.redis.url,
        "VIGIL_REDIS_PREFIX": settings.redis.prefix,
        "VIGIL_TOKEN_KEY": base64.b64encode(settings.security.token_key).decode(),
        "VIGIL_SECRET_KEYS": keys,
        "VIGIL_SECRET_PRIMARY": settings.security.primary_key_id,
        "VIGIL_ALLOW_PRIVATE_TARGETS": "1" if settings.security.allow_private_targets else "0",
    }
    if settings.security.operator_admin_token:
        env["VIGIL_OPERATOR_ADMIN_TOKEN"] = settings.security.operator_admin_token
    return env
