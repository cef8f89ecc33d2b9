"""The audit log's retention: an hourly worker job."""

from __future__ import annotations

from typing import Any

import structlog

from control_plane.core.queue import job_resources

from .service import purge

log = structlog.get_logger(__name__)


async def purge_audit_log(ctx: dict[str, Any]) -> None:
    res = job_resources(ctx)
    async with res.db.connection() as conn:
        deleted = await purge(conn, res.settings.accounts.audit_retention_days)
    if deleted:
        log.info("audit_rows_purged", count=deleted)
