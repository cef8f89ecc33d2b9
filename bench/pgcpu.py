"""CPU of PostgreSQL's backends by who they serve: ``application_name`` for client backends
(the bench starts every process with ``PGAPPNAME`` = its name, so the API's backends say
``api`` and the worker's ``worker``), ``backend_type`` for the rest (autovacuum, walwriter, …).

A backend's CPU is read from /proc/<pid>/stat (utime + stime); a backend that ended between two
samples loses what it used since the first one (the pools keep theirs, so little is lost), and
one that started counts from zero.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

from bench.proc import CLK_TCK

BACKENDS = """
SELECT pid, CASE WHEN backend_type = 'client backend'
                 THEN coalesce(nullif(application_name, ''), 'bench')
                 ELSE backend_type END
FROM pg_stat_activity
"""


def _ticks(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def sample(db_url: str) -> dict[int, tuple[str, int]]:
    """pid -> (who, CPU ticks so far) of every backend of the server."""
    with psycopg.connect(db_url, autocommit=True, application_name="bench") as conn:
        return sample_on(conn)


def sample_on(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, int]]:
    rows = conn.execute(BACKENDS).fetchall()
    out: dict[int, tuple[str, int]] = {}
    for pid, who in rows:
        ticks = _ticks(pid)
        if ticks is not None:
            out[pid] = (who, ticks)
    return out


def between(a: dict[int, tuple[str, int]], b: dict[int, tuple[str, int]]) -> dict[str, float]:
    """CPU seconds per ``who`` from sample ``a`` to ``b``."""
    cpu: dict[str, float] = defaultdict(float)
    for pid, (who, ticks) in b.items():
        cpu[who] += (ticks - a[pid][1] if pid in a else ticks) / CLK_TCK
    return dict(cpu)
