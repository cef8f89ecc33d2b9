"""structlog JSON logging, one JSON object per line on stderr.

Request id, org, target and agent are bound as contextvars (and the request's own ids are merged
from its scope, see ``observability/request_context.py``). Records from stdlib loggers
(uvicorn, psycopg, arq, …) go through the same processors, so every line is JSON.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import Processor

from control_plane.core.observability.request_context import merge_request_state


def _level(level: str | None) -> int:
    name = (level or os.environ.get("VIGIL_LOG_LEVEL", "info")).upper()
    value = logging.getLevelName(name)
    return value if isinstance(value, int) else logging.INFO


# arq logs every job's start ("→") and end ("← … ●") and each health record at INFO: with a cron
# sweep every second and an evaluation job per ingest batch, that is most of a worker's lines.
_ROUTINE_ARQ = ("→ ", " ● ", "recording health")


class RoutineJobsAtDebug(logging.Filter):
    """Demotes arq's per-job and health lines to DEBUG (shown only at debug level); failures,
    retries and start-up lines stay as they are."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "arq.worker" and record.levelno == logging.INFO:
            text = record.getMessage()
            if any(mark in text for mark in _ROUTINE_ARQ) and "↻" not in text:
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return self.level <= logging.DEBUG
        return True


def configure_logging(level: str | None = None, stream: TextIO | None = None) -> None:
    lvl = _level(level)
    out = stream or sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_request_state,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # One write per line, newline included: API workers share one stderr (see probe_agent.logs).
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(RoutineJobsAtDebug(lvl))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(lvl)
