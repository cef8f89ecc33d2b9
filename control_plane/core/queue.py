"""The arq queue: its name, the job names the API enqueues, and the helpers both sides use.

The jobs themselves live with their slices (``domain/<slice>/jobs.py``) and the worker
(``control_plane/worker/main.py``) registers them.

Ingest never waits on evaluation: it enqueues one job per stored batch and returns. Jobs are
idempotent (evaluation is watermarked and locked per target), so a lost or doubled job costs
nothing but a sweep's delay.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog

from control_plane.settings import RedisSettings

if TYPE_CHECKING:
    from control_plane.core.state import Resources

log = structlog.get_logger("vigil.jobs")

EVALUATE_TARGETS = "evaluate_targets"


def queue_name(settings: RedisSettings) -> str:
    return f"{settings.prefix}queue"


# arq names its keys after job ids (``arq:job:<id>``, ``arq:in-progress:<id>``, ``arq:retry:<id>``,
# ``arq:result:<id>``) and its cron jobs after their names; its ``arq:`` head is fixed. So every
# job id and cron name Vigil gives arq carries VIGIL_REDIS_PREFIX: two deployments on one Redis
# never take each other's jobs or cron ticks, and a deployment's keys are found with
# ``*<prefix>*``. (The queue and its health-check key start with the prefix.)


def job_id(settings: RedisSettings, name: str) -> str:
    return f"{settings.prefix}{name}"


def cron_name(settings: RedisSettings, name: str) -> str:
    return f"{settings.prefix}{name}"


async def enqueue_evaluation(res: Resources, target_ids: list[str]) -> None:
    """Ask the worker to evaluate these targets. Losing Redis loses nothing: the evaluation
    queue table keeps the marks and the worker's sweep picks them up."""
    if res.queue is None or not target_ids:
        return
    try:
        await res.queue.enqueue_job(
            EVALUATE_TARGETS,
            target_ids,
            _job_id=job_id(res.settings.redis, f"eval:{uuid.uuid4().hex}"),
            _queue_name=queue_name(res.settings.redis),
        )
    except Exception as exc:  # Redis down: the sweep covers it.
        log.warning("enqueue_failed", job=EVALUATE_TARGETS, error=str(exc))


def job_resources(ctx: dict[str, Any]) -> Resources:
    """The resources the worker's start-up put in every job's arq context."""
    res: Resources = ctx["resources"]
    return res
