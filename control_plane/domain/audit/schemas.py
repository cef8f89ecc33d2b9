"""Bodies of /api/v1/audit-log and /operator/audit-log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class AuditEntry(msgspec.Struct):
    """One mutation: who (``actor_type`` api_key / session / operator, ``actor_id``), what
    (``action`` such as ``target.create``), on what, the resource before and after as reads
    show it (secrets already ``***``), and the request it came from."""

    id: uuid.UUID
    at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    before: Any
    after: Any
    request_id: str | None
    source_ip: str | None


class OperatorAuditEntry(AuditEntry):
    """One of the operator's actions; ``org_id`` is the org it concerned, null for what
    belongs to no org (a plan, the deny-list)."""

    org_id: uuid.UUID | None
