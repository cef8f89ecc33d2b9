"""Key rotation for sealed secrets: rewrap every sealed value under the primary key, and count the
values on each key id.

A sealed column is a jsonb object ``{field: "v1:<kid>:<b64>"}`` on a table with a uuid ``id`` and
an ``org_id``; each value is bound to ``(org_id, id, field)`` (``Sealer.binding``); a target's
secret header values are fields too (``headers.<lowercased name>``), rewrapped like any other.
Registering another such column is one line in ``SEALED_COLUMNS``.

Before rewrapping, a target row whose spec still holds a secret header value in the clear (written
before header values could be secret) has it sealed under the primary key, and the sentinel put in
its place: after ``vigil keys rotate`` no credential is left unsealed at rest.

Rows are walked by keyset pagination on ``id``, one short transaction per batch. The batch's rows
are locked ``FOR NO KEY UPDATE`` (no SKIP LOCKED: a row being edited is waited for, not missed;
foreign-key checks from result inserts are not blocked). Values already on the primary key are left
untouched, so a second run writes nothing. A value that cannot be opened (unknown key id, failed
authentication, malformed) is left as it is and reported with its row; the run carries on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from control_plane.domain.targets.codec import seal_plain_headers
from control_plane.security.sealing import Sealer, SecretUnavailable

log = structlog.get_logger("vigil.keys")

DEFAULT_BATCH_SIZE = 500
# Status label for a value that is not shaped like ``v1:<kid>:<b64>``.
MALFORMED = "(malformed)"
# Keyset start: the nil uuid sorts before every other uuid.
_KEYSET_START = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class SealedColumn:
    table: str
    column: str = "secrets"

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


# Every jsonb column that holds sealed values. Add a table here (e.g. channels.secrets) once its
# writers seal with ``Sealer.binding(org_id, id, field)``.
SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn("targets"),
    SealedColumn("heartbeats"),
    SealedColumn("channels"),
    SealedColumn("monitor_shares"),
)

_SELECT_BATCH = sql.SQL(
    "SELECT id, org_id, {column} AS sealed FROM {table}"
    " WHERE id > %(after)s AND {column} <> '{{}}'::jsonb"
    " ORDER BY id LIMIT %(limit)s FOR NO KEY UPDATE"
)
_UPDATE_ROW = sql.SQL("UPDATE {table} SET {column} = %(sealed)s WHERE id = %(id)s")
# Values per key id; a value that is not ``v1:<kid>:…`` has a NULL kid.
_KEY_USAGE = sql.SQL(
    "SELECT substring(e.value from '^v1:([^:]+):') AS kid, count(*) AS n"
    " FROM {table} t, jsonb_each_text(t.{column}) e GROUP BY 1"
)


def _format(query: sql.SQL, col: SealedColumn) -> sql.Composed:
    return query.format(table=sql.Identifier(col.table), column=sql.Identifier(col.column))


@dataclass(frozen=True, slots=True)
class RewrapFailure:
    column: str
    row_id: uuid.UUID
    field: str
    key_id: str
    reason: str


@dataclass(slots=True)
class ColumnReport:
    column: str
    rewrapped: int = 0
    current: int = 0
    failures: list[RewrapFailure] = field(default_factory=list)


@dataclass(slots=True)
class RotationReport:
    primary: str
    columns: list[ColumnReport] = field(default_factory=list)
    # Secret header values found in the clear in a target's spec and sealed by this run.
    headers_sealed: int = 0

    @property
    def rewrapped(self) -> int:
        return sum(c.rewrapped for c in self.columns)

    @property
    def current(self) -> int:
        return sum(c.current for c in self.columns)

    @property
    def failures(self) -> list[RewrapFailure]:
        return [f for c in self.columns for f in c.failures]


def _rewrap_row(
    sealer: Sealer, col: SealedColumn, row: dict[str, Any], report: ColumnReport
) -> dict[str, Any] | None:
    """The row's values under the primary key, or None when nothing changed."""
    values: dict[str, Any] = row["sealed"]
    out = dict(values)
    for name, value in values.items():
        kid = Sealer.key_id(value) if isinstance(value, str) else ""
        if kid == sealer.primary:
            report.current += 1
            continue
        try:
            if not isinstance(value, str):
                raise SecretUnavailable("not a sealed value")
            out[name] = sealer.rewrap(value, Sealer.binding(row["org_id"], row["id"], name))
        except SecretUnavailable as exc:
            report.failures.append(RewrapFailure(col.name, row["id"], name, kid, str(exc)))
            continue
        report.rewrapped += 1
    return out if out != values else None


async def _rewrite_rows(
    conn: psycopg.AsyncConnection[Any],
    select: str | sql.Composed,
    update: str | sql.Composed,
    batch_size: int,
    rewrite: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> AsyncIterator[tuple[int, int]]:
    """Walk a table by keyset on ``id``, ``batch_size`` rows per transaction (``select`` locks
    them), running ``update`` with what ``rewrite`` returns for a row (None: leave it as it is).
    Yields (rows read, rows changed) after each committed batch."""
    after = _KEYSET_START
    while True:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(select, {"after": after, "limit": batch_size})
            rows = await cur.fetchall()
            if not rows:
                return
            changed = [params for params in map(rewrite, rows) if params is not None]
            if changed:
                await cur.executemany(update, changed)
        after = rows[-1]["id"]
        yield len(rows), len(changed)


async def _rotate_column(
    conn: psycopg.AsyncConnection[Any], sealer: Sealer, col: SealedColumn, batch_size: int
) -> ColumnReport:
    report = ColumnReport(col.name)

    def rewrap(row: dict[str, Any]) -> dict[str, Any] | None:
        new = _rewrap_row(sealer, col, row, report)
        return None if new is None else {"id": row["id"], "sealed": Jsonb(new)}

    select, update = _format(_SELECT_BATCH, col), _format(_UPDATE_ROW, col)
    async for rows, changed in _rewrite_rows(conn, select, update, batch_size, rewrap):
        log.info(
            "keys_rotate_batch",
            column=col.name,
            rows=rows,
            rows_changed=changed,
            rewrapped=report.rewrapped,
            failed=len(report.failures),
        )
    return report


async def rotate_keys(
    conn: psycopg.AsyncConnection[Any],
    sealer: Sealer,
    columns: Sequence[SealedColumn] = SEALED_COLUMNS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RotationReport:
    """Rewrap every sealed value of ``columns`` under ``sealer.primary``.

    ``conn`` must be in autocommit mode: each batch is its own transaction.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(sealer.primary)
    report.headers_sealed = await seal_plain_headers_at_rest(conn, sealer, batch_size)
    for col in columns:
        report.columns.append(await _rotate_column(conn, sealer, col, batch_size))
    return report


_PLAIN_HEADER_CANDIDATES = (
    "SELECT id, org_id, spec, secrets FROM targets"
    " WHERE id > %(after)s AND kind = 'http' AND spec->'headers' <> '{}'::jsonb"
    " ORDER BY id LIMIT %(limit)s FOR NO KEY UPDATE"
)
_SEAL_HEADERS = "UPDATE targets SET spec = %(spec)s, secrets = %(secrets)s WHERE id = %(id)s"


async def seal_plain_headers_at_rest(
    conn: psycopg.AsyncConnection[Any], sealer: Sealer, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Seal the secret header values still in the clear in targets' specs; returns how many."""
    total = 0

    def seal(row: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal total
        done = seal_plain_headers(sealer, row["org_id"], row["id"], row["spec"], row["secrets"])
        if done is None:
            return None
        spec, secrets, count = done
        total += count
        return {"id": row["id"], "spec": Jsonb(spec), "secrets": Jsonb(secrets)}

    async for _ in _rewrite_rows(conn, _PLAIN_HEADER_CANDIDATES, _SEAL_HEADERS, batch_size, seal):
        pass
    return total


async def key_usage(
    conn: psycopg.AsyncConnection[Any], columns: Sequence[SealedColumn] = SEALED_COLUMNS
) -> dict[str, int]:
    """How many sealed values sit on each key id (``MALFORMED`` for unparseable values)."""
    usage: dict[str, int] = {}
    for col in columns:
        cur = await conn.execute(_format(_KEY_USAGE, col))
        for kid, n in await cur.fetchall():
            label = kid if kid is not None else MALFORMED
            usage[label] = usage.get(label, 0) + n
    return usage


def format_report(report: RotationReport) -> list[str]:
    lines = [
        f"targets.spec: sealed {report.headers_sealed} secret header value(s) found in the clear"
    ]
    lines += [
        f"{c.column}: rewrapped {c.rewrapped}, already current {c.current}, "
        f"failed {len(c.failures)}"
        for c in report.columns
    ]
    lines += [
        f"FAILED {f.column} id={f.row_id} field={f.field} key_id={f.key_id or '?'}: {f.reason}"
        for f in report.failures
    ]
    lines.append(
        f"total (primary {report.primary}): rewrapped {report.rewrapped}, "
        f"already current {report.current}, failed {len(report.failures)}"
    )
    return lines


def format_usage(usage: dict[str, int], configured: Sequence[str], primary: str) -> list[str]:
    def state(kid: str) -> str:
        if kid == MALFORMED:
            return "unreadable"
        if kid == primary:
            return "primary"
        return "configured" if kid in configured else "NOT CONFIGURED"

    kids = [*configured, *sorted(k for k in usage if k not in configured)]
    width = max(len("key id"), *(len(k) for k in kids))
    lines = [f"{'key id':<{width}}  {'values':>8}  state"]
    lines += [f"{kid:<{width}}  {usage.get(kid, 0):>8}  {state(kid)}" for kid in kids]
    return lines
