"""The bench's honesty rules (issue 18 item 5): lateness that counts missing slots, the
capacity search's decisions, and PSS read without PostgreSQL's shared-buffer cache."""

from __future__ import annotations

import pytest

from bench.honesty import (
    Lateness,
    Step,
    capacity,
    expected_slots,
    held_share,
    lateness_with_missed,
    next_offered,
    parse_smaps_rollup,
    per_target_kib,
    private_pss_kib,
    split_writes,
    window_holds,
)


def late(completion: float, p99: float, expected: int = 1000) -> Lateness:
    done = round(completion * expected)
    return Lateness(expected, done, expected - done, 0.1, p99)


def test_missing_slots_count_as_a_full_interval_late() -> None:
    # 980 punctual checks out of 1,000 slots due: 2% waited a whole interval, so p99 is 60 s,
    # where the checked slots alone would say 0.1 s.
    w = lateness_with_missed([0.1] * 980, expected=1000, interval=60)
    assert w.missing == 20
    assert w.completion == pytest.approx(0.98)
    assert w.p50 == pytest.approx(0.1)
    assert w.p99 == 60.0


def test_lateness_without_missing_slots_is_the_checked_ones() -> None:
    w = lateness_with_missed([i / 100 for i in range(100)], expected=100, interval=60)
    assert w.missing == 0
    assert w.p99 == pytest.approx(0.98)
    assert w.p50 == pytest.approx(0.49)


def test_more_checks_than_slots_pads_nothing_and_early_starts_count_as_punctual() -> None:
    w = lateness_with_missed([-0.2, 0.3, 0.4], expected=2, interval=60)
    assert w.missing == 0 and w.completed == 3
    assert w.p50 == pytest.approx(0.3)


def test_a_window_with_nothing_checked_is_all_missing() -> None:
    w = lateness_with_missed([], expected=50, interval=10)
    assert w.completion == 0.0 and w.p99 == 10.0


def test_expected_slots_is_one_per_target_per_interval() -> None:
    assert expected_slots(60_000, 60.0, 60) == 60_000
    assert expected_slots(60_000, 300.0, 60) == 300_000


def test_a_window_holds_at_98_percent_and_1_s_not_below() -> None:
    assert window_holds(late(0.98, 1.0))
    assert not window_holds(late(0.979, 0.5))
    assert not window_holds(late(1.0, 1.01))


def test_one_bad_window_fails_the_step() -> None:
    assert Step(1000, (late(1.0, 0.2),) * 4).holds
    assert not Step(1000, (late(1.0, 0.2),) * 4 + (late(1.0, 1.8),)).holds
    assert not Step(1000, ()).holds


def test_capacity_is_the_last_step_that_held_before_the_first_failure() -> None:
    ok, bad = (late(1.0, 0.3),), (late(0.9, 30.0),)
    steps = [Step(1000, ok), Step(1500, ok), Step(2000, bad), Step(2500, ok)]
    assert capacity(steps) == 1500
    assert capacity([Step(1000, bad)]) == 0.0
    assert capacity([]) == 0.0


def test_the_search_steps_up_until_a_failure_or_the_maximum() -> None:
    ok, bad = (late(1.0, 0.3),), (late(0.5, 60.0),)
    assert next_offered([], 1000, 500, 6000) == 1000
    assert next_offered([Step(1000, ok)], 1000, 500, 6000) == 1500
    assert next_offered([Step(1000, ok), Step(1500, bad)], 1000, 500, 6000) is None
    assert next_offered([Step(6000, ok)], 1000, 500, 6000) is None
    assert next_offered([Step(5500, ok)], 1000, 500, 6000) == 6000


def test_held_share_is_percent_of_capacity() -> None:
    assert held_share(2700, 3000) == pytest.approx(90.0)
    assert held_share(100, 0) == 0.0


SMAPS = """\
55bd05a5c000-7fff86668000 ---p 00000000 00:00 0                          [rollup]
Rss:              150000 kB
Pss:              120000 kB
Pss_Dirty:         90000 kB
Pss_Anon:          20000 kB
Pss_File:           4000 kB
Pss_Shmem:         96000 kB
Shared_Clean:       1552 kB
SwapPss:               0 kB
"""


def test_smaps_rollup_is_parsed_and_shared_buffers_left_out() -> None:
    fields = parse_smaps_rollup(SMAPS)
    assert fields["Pss"] == 120_000
    assert fields["Pss_Shmem"] == 96_000
    assert "55bd05a5c000-7fff86668000 ---p 00000000 00" not in fields
    assert private_pss_kib(fields) == 24_000


def test_old_kernels_without_the_split_subtract_shmem_when_they_can() -> None:
    assert private_pss_kib({"Pss": 5000}) == 5000
    assert private_pss_kib({"Pss": 5000, "Pss_Shmem": 1000}) == 4000


def test_memory_per_target_is_the_slope_between_warm_states() -> None:
    # 300 MiB warm at 60k, 330 MiB warm at 90k: 1 KiB per added target, whatever the idle was.
    assert per_target_kib(300.0, 60_000, 330.0, 90_000) == pytest.approx(1.024)
    with pytest.raises(ValueError):
        per_target_kib(1.0, 10, 2.0, 10)


def test_the_bench_dns_server_answers_its_zone_only() -> None:
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype

    from bench.dnsserver import answer

    zone = dns.name.from_text("vigil-bench.test.")
    q = dns.message.make_query("t7.vigil-bench.test.", dns.rdatatype.A)
    wire = answer(q.to_wire(), zone, 30)
    assert wire is not None
    resp = dns.message.from_wire(wire)
    assert resp.id == q.id
    assert [(rr.ttl, [r.to_text() for r in rr]) for rr in resp.answer] == [(30, ["127.0.0.1"])]
    aaaa = dns.message.from_wire(
        answer(dns.message.make_query("t7.vigil-bench.test.", "AAAA").to_wire(), zone, 30) or b""
    )
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    other = answer(dns.message.make_query("example.com.", "A").to_wire(), zone, 30)
    assert other is not None and dns.message.from_wire(other).rcode() == dns.rcode.REFUSED
    assert answer(b"garbage", zone, 30) is None


def test_the_better_blackbox_is_the_one_with_more_probes_per_cpu_second() -> None:
    from bench.scenarios.agent import best_peer

    runs = {"default GOMAXPROCS": {"per_cpu_s": 900.0}, "GOMAXPROCS=1": {"per_cpu_s": 1300.0}}
    assert best_peer(runs) == ("GOMAXPROCS=1", {"per_cpu_s": 1300.0})
    assert best_peer({}) is None


def test_row_writes_leave_out_only_the_bench_own_and_count_rollups_apart() -> None:
    written = {
        "results": 1000,
        "schedules": 3000,
        "result_rollups_20261207": 400,
        "result_rollups_hourly": 20,
        "rollup_state": 2,
        "target_last_24h": 5,
        "evaluation_queue": 7,
    }
    # The bench made 1,000 schedules due itself: those are not the system's.
    assert split_writes(written, {"schedules": 1000}) == (1000 + 2000 + 7, 400 + 20 + 2 + 5)
    assert split_writes(written, {}) == (4007, 427)
