"""A bounded on-disk buffer for results the control plane cannot take right now.

Results are appended as JSON lines to numbered segment files (``seg-000000000001.jsonl``, …) and
read back oldest first. Past ``max_bytes`` on disk, whole segments are dropped oldest first and
the dropped results counted: when the outage outlasts the buffer, the newest results survive.
A segment is deleted once every line of it has been sent. Only the current segment's read
position lives in memory, so after a restart a partly sent segment is sent again from its start;
that is harmless because ingest is idempotent per slot.
"""

from __future__ import annotations

import fcntl
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgspec
import structlog

from shared.protocol import CheckResult

log = structlog.get_logger("vigil.agent.spool")

_SEGMENT = re.compile(r"^seg-(\d{12})\.jsonl$")
MAX_SEGMENT_BYTES = 4 << 20


class SpoolLockedError(Exception):
    """Another agent process is using this spool directory."""


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int  # bytes on disk, whole lines only
    lines: int
    offset: int = 0  # bytes already sent (only ever non-zero on the oldest segment)
    sent: int = 0  # lines already sent


@dataclass(frozen=True)
class SpoolChunk:
    """Results read from the oldest segment; ``commit`` it once they were delivered."""

    seq: int
    start: int
    end: int
    lines: int
    results: list[CheckResult]


class Spool:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        segment_bytes: int | None = None,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("spool max_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(1, min(MAX_SEGMENT_BYTES, max_bytes // 8))
        self.dropped_total = 0
        self._on_drop = on_drop
        self._segments: deque[_Segment] = deque()
        # Kept as a running total: the metrics thread reads it while the event loop appends.
        self._size_bytes = 0
        self._writer: BinaryIO | None = None  # open on the newest segment while it takes appends
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = (directory / ".lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolLockedError(
                f"spool directory {directory} is in use by another agent"
            ) from None
        self._load()
        self._next_seq = self._segments[-1].seq + 1 if self._segments else 1
        self._enforce_bound()

    # -- state -------------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def pending(self) -> int:
        """Results (lines) written and not yet sent."""
        return sum(seg.lines - seg.sent for seg in self._segments)

    def is_empty(self) -> bool:
        return self.pending == 0

    def close(self) -> None:
        self._close_writer()
        self._lock.close()

    # -- writing -----------------------------------------------------------------------------

    def append(self, results: Sequence[CheckResult]) -> int:
        """Append results in order; returns how many older results were dropped to make room."""
        if not results:
            return 0
        data = b"".join(msgspec.json.encode(r) + b"\n" for r in results)
        seg = self._writable_segment(len(data))
        assert self._writer is not None
        self._writer.write(data)
        self._writer.flush()
        seg.size += len(data)
        seg.lines += len(results)
        self._size_bytes += len(data)
        return self._enforce_bound()

    def _writable_segment(self, incoming: int) -> _Segment:
        if self._writer is not None:
            seg = self._segments[-1]
            if seg.size == 0 or seg.size + incoming <= self.segment_bytes:
                return seg
            self._close_writer()
        seq = self._next_seq
        self._next_seq += 1
        seg = _Segment(seq=seq, path=self.directory / f"seg-{seq:012d}.jsonl", size=0, lines=0)
        self._writer = seg.path.open("ab")
        self._segments.append(seg)
        return seg

    def _enforce_bound(self) -> int:
        dropped = 0
        while self._segments and self.size_bytes > self.max_bytes:
            seg = self._segments[0]
            lost = seg.lines - seg.sent
            self._remove_oldest()
            dropped += lost
            log.warning("spool_segment_dropped", segment=seg.path.name, results=lost)
        self._count_dropped(dropped)
        return dropped

    # -- reading -----------------------------------------------------------------------------

    def peek(self, limit: int) -> SpoolChunk | None:
        """Up to ``limit`` of the oldest unsent results, or None when nothing is pending."""
        while self._segments:
            head = self._segments[0]
            if head.offset >= head.size:
                self._remove_oldest()
                continue
            chunk = self._read(head, limit)
            if chunk.results:
                return chunk
            self.commit(chunk)  # only unreadable lines: skip past them
        return None

    def commit(self, chunk: SpoolChunk) -> None:
        """Mark a chunk sent. A chunk whose segment was dropped meanwhile is ignored."""
        if not self._segments:
            return
        head = self._segments[0]
        if head.seq != chunk.seq or head.offset != chunk.start:
            return
        head.offset = chunk.end
        head.sent += chunk.lines
        if head.offset >= head.size:
            self._remove_oldest()

    def _read(self, seg: _Segment, limit: int) -> SpoolChunk:
        results: list[CheckResult] = []
        lines = 0
        end = seg.offset
        unreadable = 0
        with seg.path.open("rb") as f:
            f.seek(seg.offset)
            while len(results) < limit and end < seg.size:
                line = f.readline()
                if not line:
                    break
                end += len(line)
                lines += 1
                try:
                    results.append(msgspec.json.decode(line, type=CheckResult))
                except msgspec.DecodeError as exc:
                    unreadable += 1
                    log.error("spool_line_unreadable", segment=seg.path.name, error=str(exc))
        self._count_dropped(unreadable)
        return SpoolChunk(seq=seg.seq, start=seg.offset, end=end, lines=lines, results=results)

    # -- files -------------------------------------------------------------------------------

    def _load(self) -> None:
        found = sorted(
            (int(m.group(1)), path)
            for path in self.directory.iterdir()
            if (m := _SEGMENT.match(path.name)) is not None
        )
        for seq, path in found:
            data = path.read_bytes()
            whole = data.rfind(b"\n") + 1
            if whole < len(data):
                # A write cut short by a crash: keep the whole lines only.
                log.warning("spool_partial_line_truncated", segment=path.name)
                with path.open("r+b") as f:
                    f.truncate(whole)
            if whole == 0:
                path.unlink()
                continue
            self._segments.append(
                _Segment(seq=seq, path=path, size=whole, lines=data.count(b"\n", 0, whole))
            )
            self._size_bytes += whole

    def _remove_oldest(self) -> None:
        seg = self._segments.popleft()
        self._size_bytes -= seg.size
        if not self._segments:
            self._close_writer()
        seg.path.unlink(missing_ok=True)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _count_dropped(self, n: int) -> None:
        if n:
            self.dropped_total += n
            if self._on_drop is not None:
                self._on_drop(n)
