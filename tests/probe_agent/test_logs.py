"""The agent's log lines are written whole: ``--processes N`` shares one stderr between agents."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from probe_agent.logs import configure_logging


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, s: str) -> int:
        self.calls.append(s)
        return super().write(s)


def test_each_log_line_is_one_write_with_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Writes()
    monkeypatch.setattr(sys, "stderr", out)
    try:
        configure_logging("info")
        log = structlog.get_logger()
        log.info("agent_started", spool_dir="/tmp/x")
        log.info("agent_stopped", exit_code=0)
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()  # basicConfig pointed it at ``out``
    # print() would write the text and the newline apart; another process's line lands between.
    assert len(out.calls) == 2
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in out.calls)
    assert [json.loads(call)["event"] for call in out.calls] == ["agent_started", "agent_stopped"]
