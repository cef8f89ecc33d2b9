"""The audit log: a row per mutation, written in the mutation's own transaction.

A service records ``await audit.record(conn, self.request, ...)`` inside the transaction that
changes the resource, so the log and the change commit or roll back together. ``before`` and
``after`` are the resource as the API reads it back, so secrets are already redacted (``***``);
never pass a stored row. Who did it (``Actor``) and where the request came from
(``RequestMeta``) are filled from the request by the service provider.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from control_plane.core.ids import new_id

# Longest stored text of a before/after document (a target's spec can be large).
MAX_DOCUMENT_BYTES = 64 * 1024

INSERT = """
INSERT INTO audit_log (id, org_id, actor_type, actor_id, action, resource_type, resource_id,
                       before, after, request_id, source_ip)
VALUES (%(id)s, %(org_id)s, %(actor_type)s, %(actor_id)s, %(action)s, %(resource_type)s,
        %(resource_id)s, %(before)s, %(after)s, %(request_id)s, %(source_ip)s)
"""


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """What a request says about itself: where it came to, its id, who sent it."""

    # Scheme and host the request came to (``https://vigil.example.com``), for links.
    origin: str = ""
    request_id: str | None = None
    source_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: an API key (``id`` the key), a user's session, or the operator."""

    type: str
    id: uuid.UUID | None = None


def _document(value: Any) -> Jsonb | None:
    if value is None:
        return None
    builtins = msgspec.to_builtins(value)
    if len(msgspec.json.encode(builtins)) > MAX_DOCUMENT_BYTES:
        return Jsonb({"truncated": True})
    return Jsonb(builtins)


async def record(
    conn: AsyncConnection[Any],
    *,
    org_id: uuid.UUID | None,
    actor: Actor,
    meta: RequestMeta,
    action: str,
    resource_type: str,
    resource_id: Any = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """One audit row, in the caller's transaction (``org_id`` None: an operator's action on
    no one org, such as a plan or the deny-list). ``action`` is ``<resource>.<verb>``
    (``target.create``); ``before``/``after`` are API read shapes (msgspec Structs or JSON)."""
    await conn.execute(
        INSERT,
        {
            "id": new_id(),
            "org_id": org_id,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": None if resource_id is None else str(resource_id),
            "before": _document(before),
            "after": _document(after),
            "request_id": meta.request_id,
            "source_ip": meta.source_ip,
        },
    )


async def record_operator(
    conn: AsyncConnection[Any],
    meta: RequestMeta,
    action: str,
    resource_type: str,
    resource_id: Any,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """An operator's action on no one org (a plan, a deny-list entry): a row with no org, the
    operator's log (``GET /operator/audit-log``)."""
    await record(
        conn,
        org_id=None,
        actor=Actor("operator"),
        meta=meta,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
    )
