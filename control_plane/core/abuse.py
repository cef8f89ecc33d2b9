"""Abuse protection: the operator's deny-list, applied to every URL or host a tenant makes us
connect to (targets on create, update and test; outbound channel URLs).

``await check_url(conn, url)`` raises a 400: ``DOMAIN_DENYLISTED`` when the URL's host is a
listed domain or a name under one (``details.domain``, ``details.reason``),
``URL_PATTERN_BLOCKED`` when the whole URL matches a listed pattern (a case-insensitive POSIX
regular expression, ``details.reason``). ``check_host`` is the same for a bare host (TCP, TLS,
ICMP, DNS and domain checks). One indexed query; an empty list costs a query of nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from psycopg import AsyncConnection

from control_plane.core.errors import ApiError

MATCH = """
SELECT kind, value, reason FROM abuse_denylist
WHERE (kind = 'domain' AND (%(host)s = value OR right(%(host)s, length(value) + 1) = '.' || value))
   OR (kind = 'url_pattern' AND %(url)s::text IS NOT NULL AND %(url)s ~* value)
ORDER BY kind, value
LIMIT 1
"""


def _host(raw: str) -> str:
    return raw.strip().rstrip(".").lower().strip("[]")


async def _check(conn: AsyncConnection[Any], host: str, url: str | None, field: str | None) -> None:
    cur = await conn.execute(MATCH, {"host": _host(host), "url": url})
    row = await cur.fetchone()
    if row is None:
        return
    kind, value, reason = (
        (row["kind"], row["value"], row["reason"]) if isinstance(row, dict) else row
    )
    if kind == "domain":
        raise ApiError(
            400,
            "DOMAIN_DENYLISTED",
            f"{host} is on this service's deny-list",
            field,
            {"domain": value, "reason": reason},
        )
    raise ApiError(
        400,
        "URL_PATTERN_BLOCKED",
        "this URL matches a pattern this service refuses",
        field,
        {"reason": reason},
    )


async def any_entries(conn: AsyncConnection[Any]) -> bool:
    """Whether the deny-list holds anything (a batch skips per-item checks when it does not)."""
    row = await (await conn.execute("SELECT EXISTS (SELECT 1 FROM abuse_denylist)")).fetchone()
    if row is None:
        return False
    value = row["exists"] if isinstance(row, dict) else row[0]
    return bool(value)


async def check_url(conn: AsyncConnection[Any], url: str, field: str | None = None) -> None:
    """Refuse ``url`` when its host or the URL itself is deny-listed (see the module doc)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    await _check(conn, host, url, field)


async def check_host(conn: AsyncConnection[Any], host: str, field: str | None = None) -> None:
    """Refuse a bare host that is (under) a deny-listed domain."""
    await _check(conn, host, None, field)


async def check_target(conn: AsyncConnection[Any], spec: Any) -> None:
    """A check spec's destination: its ``url``, else its ``host``, ``domain`` or ``name``."""
    url = getattr(spec, "url", None)
    if isinstance(url, str):
        await check_url(conn, url, "/check/url")
        return
    for attr in ("host", "domain", "name"):
        value = getattr(spec, attr, None)
        if isinstance(value, str) and value:
            await check_host(conn, value, f"/check/{attr}")
            return
