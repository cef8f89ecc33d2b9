"""``BENCH_PG_STATEMENTS=1``: where PostgreSQL's time goes, per statement, per check.

The bench's own embedded PostgreSQL is started with ``shared_preload_libraries =
pg_stat_statements`` (bench/stack.py; an external server given by ``VIGIL_DATABASE_URL`` must
have it loaded already), each scenario's database gets the extension, and a scenario resets the
statistics when its measurement starts and reads them when it ends: the statements of its own
database, by total execution time, divided by the checks (results) of the measurement. Planning
time is not tracked (``pg_stat_statements.track_planning`` off, the default): the figures are
execution time in the backends, not their whole CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg

from control_plane.db.sql import parse_blocks

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.max=2000")

TOP = """
SELECT s.query, s.calls, s.total_exec_time, s.rows
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.total_exec_time DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Statement:
    label: str
    calls: int
    total_ms: float
    rows: int


def _shape(query: str) -> str:
    """A statement as pg_stat_statements and our SQL files both spell it: no comments, every
    parameter and constant a ``?``, whitespace collapsed."""
    text = " ".join(line.split("--", 1)[0] for line in query.splitlines())
    text = re.sub(r"'(?:[^']|'')*'", "?", text)
    text = re.sub(r"%\(\w+\)s|%s|\$\d+|\b\d+(?:\.\d+)?\b", "?", text)
    # Constants pg_stat_statements replaces too (not IS [NOT] NULL, which is a test).
    text = re.sub(r"(?<!IS )(?<!NOT )\bNULL\b|\btrue\b|\bfalse\b", "?", text)
    return re.sub(r"\s+", " ", text).strip()


def _common(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@cache
def _named() -> dict[str, str]:
    """Shape -> ``file:name`` of every named block in the application's SQL files."""
    out: dict[str, str] = {}
    for path in sorted((ROOT / "control_plane").rglob("*.sql")):
        if "migrations" in path.parts or path.name == "schema.sql":
            continue
        for name, body in parse_blocks(path.read_text()).items():
            where = path.parent.name if path.stem == "queries" else path.stem
            out.setdefault(_shape(body), f"{where}:{name}")
    return out


def label(query: str, width: int = 90) -> str:
    """A named block of our SQL files by its name (``queries:ingest_results``), any other
    statement by its text without comments, on one line and cut to ``width``."""
    shape = _shape(query)
    named = _named().get(shape)
    if named:
        return named
    # pg_stat_statements spells some constants its own way (a typed literal): the block that
    # shares the longest start with it, if that start is long (a ``~`` marks the guess).
    best, name = max(((_common(shape, k), v) for k, v in _named().items()), default=(0, ""))
    if best >= min(len(shape), 120):
        return f"~{name}"
    return shape if len(shape) <= width else shape[: width - 1] + "…"


async def enable(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


async def reset(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_statements_reset()")


async def top(db_url: str, limit: int = 12) -> list[Statement]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        rows = await (await conn.execute(TOP, {"limit": limit})).fetchall()
    return [Statement(label(str(q)), int(c), float(t), int(r)) for q, c, t, r in rows]


def per_check(stmts: list[Statement], checks: int, limit: int = 12) -> list[str]:
    """One line per statement: ms per check, share of the listed time, calls per check."""
    if checks <= 0:
        return []
    total = sum(s.total_ms for s in stmts) or 1.0
    return [
        f"{s.total_ms / checks:.4f} ms/check ({100 * s.total_ms / total:.0f}%), "
        f"{s.calls / checks:.3f} calls/check: {s.label}"
        for s in stmts[:limit]
    ]
