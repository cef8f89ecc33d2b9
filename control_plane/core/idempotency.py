"""``Idempotency-Key``: a retried write answers what the first one answered, across restarts.

A route that accepts the header wraps its work in ``replay_or_run``::

    answer = await idempotency.replay_or_run(
        res.db, org_id, request.headers.get("idempotency-key"), "targets.bulk", body, run
    )

where ``run`` does the write and returns a ``Stored`` (status, JSON body bytes, headers). The
answer is kept in PostgreSQL (``idempotency_keys``) for 24 h keyed by (org, key, body hash): a
retry with the same key and the same body gets the stored answer without the write running
again (``Idempotent-Replayed: true`` marks it); the same key with another body is another
entry and executes normally (the reference's rule). The body hash covers the route's
``scope`` too, so one key sent to two routes never crosses.

Concurrent retries: the first takes a session advisory lock on (org, key, hash) on its own
pooled connection and holds it until the answer is stored; a retry arriving meanwhile waits on
that lock and then finds the answer. A process that dies mid-write drops its session and the
lock with it, so a retry after a crash is never stuck. Only answers below 500 are kept (an
``ApiError`` propagates and stores nothing: the retry runs again and fails the same way, or
succeeds if what refused it changed).

The answer is stored in the write's own transaction: ``replay_or_run`` is given the connection
the write runs on and wraps ``run()`` in a transaction on it (the service's own
``conn.transaction()`` becomes a savepoint inside it), then stores the answer before that
transaction commits. The write and its answer commit together or not at all: a process killed
in between leaves neither, and the retry runs the write once.

``purge_expired`` deletes expired rows (the worker runs it, ``worker/main.py``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from control_plane.core.errors import ApiError

if TYPE_CHECKING:
    from control_plane.core.service import TenantService

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TTL_HOURS = 24
MAX_KEY_LEN = 255

_LOCK = "SELECT pg_advisory_lock(hashtextextended(%(k)s, 4243))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%(k)s, 4243))"
_FIND = """
SELECT status, headers, body FROM idempotency_keys
WHERE org_id = %(org_id)s AND key = %(key)s AND body_hash = %(hash)s AND expires_at > now()
"""
_STORE = """
INSERT INTO idempotency_keys (org_id, key, body_hash, scope, status, headers, body, expires_at)
VALUES (%(org_id)s, %(key)s, %(hash)s, %(scope)s, %(status)s, %(headers)s, %(body)s,
        now() + make_interval(hours => %(ttl)s))
ON CONFLICT (org_id, key, body_hash) DO UPDATE
    SET scope = EXCLUDED.scope, status = EXCLUDED.status, headers = EXCLUDED.headers,
        body = EXCLUDED.body, created_at = now(), expires_at = EXCLUDED.expires_at
"""
_PURGE = """
WITH gone AS (
    DELETE FROM idempotency_keys
    WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT %(batch)s)
    RETURNING 1
)
SELECT count(*) AS n FROM gone
"""


@dataclass(slots=True)
class Stored:
    """An answer as it is kept and replayed."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def valid_key(value: str | None) -> str | None:
    """The header's value, or None when absent; a malformed key is a 400."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LEN or not value.isascii() or not value.isprintable():
        raise ApiError(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            f"{HEADER} must be 1 to {MAX_KEY_LEN} printable ASCII characters",
            f"/headers/{HEADER}",
        )
    return value


def body_hash(scope: str, body: bytes) -> bytes:
    return hashlib.sha256(scope.encode() + b"\x00" + body).digest()


async def _find(
    conn: AsyncConnection[Any], org_id: uuid.UUID, key: str, digest: bytes
) -> Stored | None:
    cur = await conn.execute(_FIND, {"org_id": org_id, "key": key, "hash": digest})
    row = await cur.fetchone()
    if row is None:
        return None
    if isinstance(row, dict):
        status, headers, body = row["status"], row["headers"], row["body"]
    else:
        status, headers, body = row
    return Stored(int(status), bytes(body), dict(headers or {}), replayed=True)


async def replay_or_run(
    db: AsyncConnectionPool[AsyncConnection[Any]],
    org_id: uuid.UUID,
    key: str | None,
    scope: str,
    body: bytes,
    run: Callable[[], Awaitable[Stored]],
    work: AsyncConnection[Any],
) -> Stored:
    """The stored answer of (org, key, scope + body), or ``run()``'s, stored for 24 h in the
    transaction of the write (``work``: the connection ``run`` writes on)."""
    key = valid_key(key)
    if key is None:
        return await run()
    digest = body_hash(scope, body)
    lock_key = f"{org_id}:{key}:{digest.hex()}"
    async with db.connection() as conn:
        await conn.execute(_LOCK, {"k": lock_key})
        try:
            found = await _find(conn, org_id, key, digest)
            if found is not None:
                return found
            async with work.transaction():
                answer = await run()
                if answer.status < 500:
                    await work.execute(
                        _STORE,
                        {
                            "org_id": org_id,
                            "key": key,
                            "hash": digest,
                            "scope": scope,
                            "status": answer.status,
                            "headers": Jsonb(answer.headers),
                            "body": answer.body,
                            "ttl": TTL_HOURS,
                        },
                    )
            return answer
        finally:
            await conn.execute(_UNLOCK, {"k": lock_key})


async def purge_expired(
    db: AsyncConnectionPool[AsyncConnection[Any]], batch: int = 5000, max_batches: int = 100
) -> int:
    """Delete expired answers in batches; how many went."""
    total = 0
    async with db.connection() as conn:
        for _ in range(max_batches):
            cur = await conn.execute(_PURGE, {"batch": batch})
            row = await cur.fetchone()
            n = int((row["n"] if isinstance(row, dict) else row[0]) if row else 0)
            total += n
            if n < batch:
                break
    return total


def to_response(answer: Stored) -> Response[Any]:
    """The HTTP response of an answer, fresh or replayed (JSON body bytes as stored)."""
    headers = dict(answer.headers)
    if answer.replayed:
        headers[REPLAYED] = "true"
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers=headers,
    )


def json_answer(status: int, value: Any, headers: dict[str, str] | None = None) -> Stored:
    return Stored(status, msgspec.json.encode(value), dict(headers or {}))


async def answer_once(
    service: TenantService,
    request: Request[Any, Any, Any],
    scope: str,
    body: bytes,
    run: Callable[[], Awaitable[Stored]],
) -> Response[Any]:
    """A write route's response under ``Idempotency-Key``: the stored answer replayed, or
    ``run()``'s, stored in the transaction of the write (the service's connection)."""
    answer = await replay_or_run(
        service.res.db,
        service.org.org_id,
        request.headers.get(HEADER),
        scope,
        body,
        run,
        await service.conn(),
    )
    return to_response(answer)
