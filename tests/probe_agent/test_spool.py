"""The on-disk spool: bounded, drops oldest, keeps order, survives a restart."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from probe_agent.spool import Spool, SpoolLockedError
from tests.probe_agent.helpers import drain, ids, results

LINE = len(msgspec.json.encode(results(0, 1)[0])) + 1


def test_results_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=LINE * 10)
    for start in range(0, 50, 5):
        spool.append(results(start, 5))
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 5
    assert spool.pending == 50
    assert drain(spool) == ids(0, 50)
    assert spool.is_empty() and spool.size_bytes == 0
    assert list(tmp_path.glob("seg-*.jsonl")) == []
    spool.close()


def test_appends_while_draining_keep_their_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=LINE * 100)
    spool.append(results(0, 10))
    chunk = spool.peek(4)
    assert chunk is not None
    spool.append(results(10, 10))  # into the segment being read
    spool.commit(chunk)
    assert drain(spool) == ids(4, 16)
    spool.close()


def test_bounded_by_dropping_the_oldest_segments(tmp_path: Path) -> None:
    dropped: list[int] = []
    spool = Spool(tmp_path, max_bytes=LINE * 30, segment_bytes=LINE * 10, on_drop=dropped.append)
    for start in range(0, 100, 10):
        spool.append(results(start, 10))
        assert spool.size_bytes <= spool.max_bytes
    assert spool.dropped_total == 70 == sum(dropped)
    assert spool.pending == 30
    assert drain(spool) == ids(70, 30)  # the newest survive, still in order
    spool.close()


def test_dropping_counts_only_unsent_results(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=LINE * 20, segment_bytes=LINE * 10)
    spool.append(results(0, 10))
    chunk = spool.peek(4)
    assert chunk is not None
    spool.commit(chunk)
    spool.append(results(10, 10))
    spool.append(results(20, 10))  # over the bound: the half-sent first segment goes
    assert spool.dropped_total == 6
    stale = spool.peek(3)
    assert stale is not None and stale.results[0].lease_id == "lease-00010"
    assert drain(spool) == ids(10, 20)
    spool.close()


def test_commit_of_a_dropped_segment_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=LINE * 20, segment_bytes=LINE * 10)
    spool.append(results(0, 10))
    in_flight = spool.peek(10)
    assert in_flight is not None
    spool.append(results(10, 10))
    spool.append(results(20, 10))  # drops the segment being sent
    spool.commit(in_flight)
    assert drain(spool) == ids(10, 20)
    spool.close()


def test_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=LINE * 10)
    for start in range(0, 25, 5):
        spool.append(results(start, 5))  # segments of 10, 10 and 5 results
    for limit in (12, 4):  # a chunk never spans segments
        chunk = spool.peek(limit)
        assert chunk is not None
        spool.commit(chunk)  # the first segment is gone, the second is partly sent
    spool.close()

    reopened = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=LINE * 10)
    # A partly sent segment is sent again from its start (ingest is idempotent per slot).
    assert reopened.pending == 15
    reopened.append(results(25, 5))
    assert drain(reopened) == ids(10, 20)
    reopened.close()


def test_a_line_cut_short_by_a_crash_is_discarded(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(results(0, 3))
    spool.close()
    (segment,) = tmp_path.glob("seg-*.jsonl")
    with segment.open("ab") as f:
        f.write(msgspec.json.encode(results(3, 1)[0])[:40])

    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.pending == 3
    reopened.append(results(4, 1))
    assert drain(reopened) == [*ids(0, 3), "lease-00004"]
    reopened.close()


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(results(0, 2))
    spool.close()
    (segment,) = tmp_path.glob("seg-*.jsonl")
    with segment.open("ab") as f:
        f.write(b'{"not": "a result"}\n')
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.append(results(2, 1))
    assert drain(reopened) == ids(0, 3)
    assert reopened.dropped_total == 1
    reopened.close()


def test_one_spool_directory_per_agent(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
    Spool(tmp_path, max_bytes=1 << 20).close()
