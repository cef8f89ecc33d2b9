"""The incident rules as pure functions, with properties checked by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from control_plane.domain.incidents.policy import RegionCounters, apply_result, policy_met

T0 = datetime(2026, 1, 1, tzinfo=UTC)
statuses = st.sampled_from(["up", "down", "degraded", "error", "missed"])


def run(seq: list[str], confirmations: int) -> list[RegionCounters]:
    state, out = RegionCounters(), []
    for i, status in enumerate(seq):
        state = apply_result(state, status, confirmations, T0 + timedelta(minutes=i))
        out.append(state)
    return out


@given(st.lists(statuses, max_size=60), st.integers(min_value=1, max_value=6))
def test_never_failing_before_enough_consecutive_bad_results(
    seq: list[str], confirmations: int
) -> None:
    for i, state in enumerate(run(seq, confirmations)):
        if state.failing:
            # Somewhere up to here there is a run of `confirmations` downs not broken by a good
            # result (error/missed do not break it: they say nothing about the target).
            conclusive = [s for s in seq[: i + 1] if s in ("up", "down", "degraded")]
            runs, cur = [], 0
            for s in conclusive:
                cur = cur + 1 if s == "down" else 0
                runs.append(cur)
            assert max(runs, default=0) >= confirmations


@given(st.lists(statuses, max_size=60), st.integers(min_value=1, max_value=6))
def test_recovery_needs_as_many_good_results(seq: list[str], confirmations: int) -> None:
    states = run(seq, confirmations)
    for prev, cur, status in zip(states, states[1:], seq[1:], strict=False):
        if prev.failing and not cur.failing:
            assert status in ("up", "degraded")
            assert prev.consecutive_good + 1 >= confirmations


def test_confirmation_counts_exactly() -> None:
    assert [s.failing for s in run(["down", "down", "up", "down", "down"], 2)] == [
        False,
        True,
        True,
        True,
        True,
    ]
    assert [s.failing for s in run(["down", "up", "down", "up"], 2)] == [False] * 4
    assert [s.failing for s in run(["down", "down", "up", "up"], 2)] == [False, True, True, False]
    # error and missed neither confirm nor break a run.
    assert [s.failing for s in run(["down", "missed", "error", "down"], 2)] == [
        False,
        False,
        False,
        True,
    ]
    # degraded is not down.
    assert not any(s.failing for s in run(["degraded"] * 5, 1))


def test_failing_since_is_the_first_bad_result_of_the_run() -> None:
    states = run(["up", "down", "down", "down"], 3)
    assert states[-1].failing and states[-1].failing_since == T0 + timedelta(minutes=1)


def test_policies() -> None:
    assert policy_met("any", 1, 3)
    assert not policy_met("any", 0, 3)
    assert policy_met("all", 3, 3) and not policy_met("all", 2, 3)
    assert policy_met("majority", 2, 3) and not policy_met("majority", 1, 2)
    assert policy_met("majority", 1, 1)
    assert policy_met({"count": 2}, 2, 5) and not policy_met({"count": 2}, 1, 5)
    assert not policy_met("all", 0, 0)


@given(
    st.sampled_from(["any", "all", "majority", {"count": 1}, {"count": 2}, {"count": 3}]),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=8),
)
def test_policy_is_monotonic_in_failing_regions(policy: object, failing: int, extra: int) -> None:
    reporting = failing + extra
    if policy_met(policy, failing, reporting) and failing + 1 <= reporting:
        assert policy_met(policy, failing + 1, reporting)
    if failing == 0:
        assert not policy_met(policy, failing, reporting)
