"""The notify outage's latency probe (a process of its own): its sample lines as the bench reads
them back, the windows the bench cuts them into, and the outage/quiet ratio, which is refused
on too few quiet samples. With the machine's busy cores from /proc/stat."""

from __future__ import annotations

import math
import os

import pytest

from bench.latency_probe import (
    MIN_QUIET_SAMPLES,
    ProbeSample,
    format_sample,
    p99,
    parse_samples,
    ratio,
    window,
)
from bench.proc import cores_busy, parse_proc_stat_cpu


def test_samples_round_trip_through_the_file_format() -> None:
    samples = [
        ProbeSample("lease", 1_700_000_000.123456, 0.012345, True),
        ProbeSample("ingest", 1_700_000_000.2, 0.5, False),
    ]
    assert parse_samples("".join(format_sample(s) for s in samples)) == samples


def test_a_line_cut_short_or_foreign_is_skipped() -> None:
    text = (
        "lease 100.0 0.010 1\n"
        "garbage\n"
        "ingest 100.1 0.020 1\n"
        "lease 100.2 nan-ish 1\n"
        "wait 100.3 0.1 1\n"
        "lease 100.4 0.0"  # the probe was stopped mid-write
    )
    got = parse_samples(text)
    assert [(s.kind, s.at) for s in got] == [("lease", 100.0), ("ingest", 100.1)]


def test_window_takes_the_samples_sent_inside_it_failed_ones_included() -> None:
    samples = [
        ProbeSample("lease", 9.99, 1.0, True),
        ProbeSample("lease", 10.0, 0.1, True),
        ProbeSample("ingest", 10.5, 0.2, True),
        ProbeSample("lease", 15.0, 0.3, False),
        ProbeSample("lease", 20.0, 9.0, True),
    ]
    assert window(samples, "lease", 10.0, 20.0) == [0.1, 0.3]
    assert window(samples, "ingest", 10.0, 20.0) == [0.2]


def test_p99_is_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 201)]  # 1..200
    assert p99(xs) == 198.0
    assert math.isnan(p99([]))


def test_ratio_is_p99_over_p99() -> None:
    quiet = [0.01] * 99 + [0.02]  # p99 of 100 = the 99th smallest
    storm = [0.03] * 100
    assert ratio(quiet, storm) == pytest.approx(3.0)


def test_ratio_refuses_too_few_quiet_samples() -> None:
    with pytest.raises(ValueError, match="37 quiet samples"):
        ratio([0.01] * 37, [0.02] * 500)
    with pytest.raises(ValueError, match="quiet samples"):
        ratio([0.01] * (MIN_QUIET_SAMPLES - 1), [0.02] * 500)
    with pytest.raises(ValueError, match="during the outage"):
        ratio([0.01] * MIN_QUIET_SAMPLES, [])


def test_proc_stat_busy_leaves_out_idle_and_iowait() -> None:
    text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
    busy, total = parse_proc_stat_cpu(text)
    assert total == 1000  # guest time is already in user
    assert busy == 1000 - 800 - 40
    assert cores_busy((0, 0), (160, 1000)) == pytest.approx(0.16 * (os.cpu_count() or 1))
