"""Heartbeat (push) monitors: their tokens, what reads show, and the signals jobs send.

Nobody probes a heartbeat target: the monitored job calls ``/api/heartbeat/{token}`` (a ping,
``up``), ``…/start`` (a run began) or ``…/fail`` (an explicit ``down``). Results land in
``results`` under the pseudo region ``heartbeat`` and are marked for evaluation like an agent's,
so the incident engine handles them like any other. The worker's sweep records a ``down`` for
every period that passes without a signal (``jobs.py``).

The token is minted when a target becomes a heartbeat and kept for its life. It is found like an
API token (clear prefix, keyed hash compared in constant time, so a ping never decrypts anything)
and also sealed at rest (``heartbeats.secrets``, rewrapped by key rotation like a target's), so
reads can show the ping URL again, as the reference does for share links.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from control_plane.core.errors import ApiError, not_found
from control_plane.core.queue import enqueue_evaluation
from control_plane.core.service import Service
from control_plane.db.sql import Queries
from control_plane.domain.targets.schemas import Target
from control_plane.security import tokens
from control_plane.security.sealing import Sealer, SecretUnavailable
from shared import codes
from shared.checks import HeartbeatCheck

from .schemas import HeartbeatEndpoint

Q = Queries.beside(__file__)

HEARTBEAT = "heartbeat"
# The region every heartbeat result is recorded under: the target's one reporting "region".
HEARTBEAT_REGION = "heartbeat"
TOKEN_PREFIX = "hb_"
URL_TEMPLATE = "/api/heartbeat/{token}"
# ``tokens.issue`` makes 32 random bytes, URL-safe base64 without padding: 43 characters.
_TOKEN = re.compile(r"^hb_[A-Za-z0-9_-]{43}$")
# A failure's body, kept as the result's error.
MAX_FAIL_MESSAGE_BYTES = 1024
DEFAULT_FAIL_MESSAGE = "the job reported a failure"

Signal = Literal["ping", "start", "fail"]


def heartbeat_not_found() -> ApiError:
    return not_found("HEARTBEAT_NOT_FOUND", "heartbeat")


# The one field of ``heartbeats.secrets``; the sealed value is bound to (org, target, field).
SECRET_FIELD = "heartbeat_token"


def policy_sources(kind: str, regions: Sequence[str]) -> int:
    """How many sources a region policy counts over: a heartbeat target has exactly one."""
    return 1 if kind == HEARTBEAT else len(regions)


async def sync_target(
    conn: AsyncConnection[Any],
    sealer: Sealer,
    token_key: bytes | None,
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    kind: str,
) -> None:
    """Keep a target's heartbeat state in step with its kind, in the caller's transaction.

    A heartbeat target is probed from no region and has a token (minted once); any other kind
    has no token.
    """
    ids = {"org_id": org_id, "target_id": target_id}
    if kind != HEARTBEAT:
        await conn.execute(Q.delete_heartbeat, ids)
        return
    if token_key is None:
        raise RuntimeError("minting a heartbeat token needs the deployment's token key")
    await conn.execute(Q.clear_regions, ids)
    # Minted every time, stored only the first: a target keeps its token across updates.
    issued = tokens.issue(token_key, TOKEN_PREFIX)
    sealed = sealer.seal(issued.token, Sealer.binding(org_id, target_id, SECRET_FIELD))
    params = {**ids, "prefix": issued.prefix, "hash": issued.hash}
    await conn.execute(Q.insert_heartbeat, {**params, "secrets": Jsonb({SECRET_FIELD: sealed})})


def _endpoint(
    sealer: Sealer, org_id: uuid.UUID, row: dict[str, Any], base_url: str
) -> HeartbeatEndpoint:
    token: str | None
    try:
        sealed = row["secrets"][SECRET_FIELD]
        token = sealer.open(sealed, Sealer.binding(org_id, row["id"], SECRET_FIELD))
    except (KeyError, SecretUnavailable):
        token = None
    return HeartbeatEndpoint(
        token=token,
        url=base_url + URL_TEMPLATE.format(token=token) if token else None,
        expected_by=row["due_at"],
        last_ping_at=row["last_ping_at"],
        last_fail_at=row["last_fail_at"],
        last_start_at=row["last_start_at"],
    )


async def show_endpoints(
    conn: AsyncConnection[Any],
    sealer: Sealer,
    org_id: uuid.UUID,
    targets: list[Target],
    base_url: str = "",
) -> list[Target]:
    """Fill in ``heartbeat`` on the org's heartbeat targets (the others are left as they are);
    its ``url`` is absolute under ``base_url`` (the deployment's public URL)."""
    ids = [t.id for t in targets if isinstance(t.check, HeartbeatCheck)]
    if not ids:
        return targets
    rows = await (await conn.execute(Q.endpoints, {"org_id": org_id, "ids": ids})).fetchall()
    by_id = {row["id"]: row for row in rows}
    for target in targets:
        row = by_id.get(target.id)
        if row is not None:
            target.heartbeat = _endpoint(sealer, org_id, row, base_url)
    return targets


def fail_message(body: bytes) -> str:
    """The first KiB of a failure's body as text (NUL cannot be stored), or a default."""
    text = body[:MAX_FAIL_MESSAGE_BYTES].decode("utf-8", errors="ignore").replace("\x00", "")
    return text.strip() or DEFAULT_FAIL_MESSAGE


def _signal_params(target_id: uuid.UUID, signal: Signal, body: bytes) -> dict[str, Any]:
    failed = signal == "fail"
    return {
        "target_id": target_id,
        "region_id": HEARTBEAT_REGION,
        "status": "down" if failed else "up",
        "error": fail_message(body) if failed else None,
        "error_code": codes.HEARTBEAT_FAILED if failed else None,
        "details": Jsonb({"signal": signal}),
    }


class HeartbeatReceiver(Service):
    """Records what a job reports. The token is the only credential: no org, no API token."""

    async def receive(self, token: str, signal: Signal, body: bytes = b"") -> None:
        prefix = tokens.lookup_prefix(token, TOKEN_PREFIX) if _TOKEN.match(token) else None
        if prefix is None:
            raise heartbeat_not_found()
        key = self.res.settings.security.token_key
        conn = await self.conn()
        async with conn.transaction():
            row = await (await conn.execute(Q.lock_by_prefix, {"prefix": prefix})).fetchone()
            if row is None or not tokens.verify(key, token, bytes(row["token_hash"])):
                raise heartbeat_not_found()
            target_id: uuid.UUID = row["id"]
            if signal == "start":
                await conn.execute(Q.record_start, {"target_id": target_id})
                return
            cur = await conn.execute(Q.record_signal, _signal_params(target_id, signal, body))
            out = await cur.fetchone()
        if out is not None and out["marked"]:
            await enqueue_evaluation(self.res, [str(target_id)])
