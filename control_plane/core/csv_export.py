"""``format=csv`` on list reads: streamed RFC 4180 CSV, safe to open in a spreadsheet.

A route that offers CSV answers ``csv_response(columns, items, filename)`` where ``items`` is an
async iterator of the same read shapes (msgspec Structs) its JSON answer lists, so a CSV row
parsed back equals the JSON item: ``columns`` are dotted paths into the item's JSON form
(``last_result.status``). The rows come from ``stream_rows``, which reads the query on its own
pooled connection in single-row mode while the response is sent: a year of results is never
held in memory (the request's service connection is given back before the body is sent, so the
stream cannot use it).

Cells: null is empty, booleans ``true``/``false``, numbers as JSON writes them, lists and
objects as their JSON text. Quoting is RFC 4180 (a field with a comma, quote or line break is
quoted, quotes doubled, lines end in CRLF), with a header row. A text cell that begins with
``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is prefixed with ``'`` so no
spreadsheet runs it as a formula (OWASP's CSV injection advice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any, Literal

import msgspec
from litestar.params import QueryParameter
from litestar.response import Stream
from psycopg import AsyncConnection
from psycopg.rows import RowFactory
from psycopg_pool import AsyncConnectionPool

from control_plane.core.errors import ApiError

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500
Format = Literal["json", "csv"]
# The route parameter: ``format_: FormatParam = None``, read with ``wants_csv``.
FormatParam = Annotated[
    str | None,
    QueryParameter(
        name="format",
        description="json (default) or csv: the whole filtered list as streamed CSV (limit and "
        "offset do not apply)",
        max_length=10,
        schema_extra={"enum": ["json", "csv"]},
    ),
]


def wants_csv(value: str | None) -> bool:
    """Whether ``format`` asks for CSV (absent or ``json``: the JSON answer)."""
    if value is None or value == "json":
        return False
    if value == "csv":
        return True
    raise ApiError(400, "INVALID_QUERY_PARAM", "format must be json or csv", "/format")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_LEADS) else text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return msgspec.json.encode(value).decode()
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(msgspec.json.encode(value).decode())


def _pick(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


async def csv_chunks(columns: Sequence[str], items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    n = 0
    async for item in items:
        doc = msgspec.to_builtins(item)
        writer.writerow([cell(_pick(doc, c)) for c in columns])
        n += 1
        if n % ROWS_PER_CHUNK == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def csv_response(columns: Sequence[str], items: AsyncIterator[Any], filename: str) -> Stream:
    return Stream(
        csv_chunks(columns, items),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def stream_rows(
    db: AsyncConnectionPool[AsyncConnection[Any]],
    query: str,
    params: dict[str, Any],
    convert: Callable[[Any], Any],
    *,
    row_factory: RowFactory[Any] | None = None,
    binary: bool = False,
) -> AsyncIterator[Any]:
    """``convert(row)`` of each row of ``query``, read on its own connection as it is sent."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
        async with cur:
            async for row in cur.stream(query, params, binary=binary):
                yield convert(row)
