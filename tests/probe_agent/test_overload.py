"""An overloaded agent says so: a gauge, a counter and one log line each way."""

from __future__ import annotations

from structlog.testing import capture_logs

from probe_agent.metrics import AgentMetrics
from probe_agent.overload import OverloadMonitor


def gauge(metrics: AgentMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_full_batches_of_late_slots_make_the_agent_say_it_is_overloaded() -> None:
    metrics = AgentMetrics()
    monitor = OverloadMonitor(
        metrics, concurrency=100, late_s=1.0, enter_after_s=5.0, gap_s=2.0, leave_after_s=10.0
    )
    with capture_logs() as logs:
        # A burst: full and late for 4 s, then caught up for good. Not overloaded.
        for t in range(5):
            monitor.observe(float(t), 100, 100, [2.0, 1.5])
        monitor.observe(5.0, 100, 40, [0.1])
        monitor.observe(8.0, 100, 40, [0.1])
        assert not monitor.overloaded
        # Full batches of slots on time are a busy agent, not a late one.
        for t in range(10, 30):
            monitor.observe(float(t), 100, 100, [0.2])
        assert not monitor.overloaded
        assert gauge(metrics, "vigil_agent_overloaded") == 0
        # Full and late for 5 s, with a short lull between: overloaded, said once.
        for t in range(40, 50):
            monitor.observe(float(t), 100, 100, [3.0 + t - 40])
            monitor.observe(t + 0.5, 100, 60, [0.3])  # a batch with room does not reset it
        assert monitor.overloaded
        assert gauge(metrics, "vigil_agent_overloaded") == 1
        assert gauge(metrics, "vigil_agent_overload_episodes_total") == 1
        # Batches with room left, but not for long enough yet: still overloaded (no flapping).
        monitor.observe(55.0, 100, 10, [0.3])
        assert monitor.overloaded
        # Ten seconds without a late, full batch: caught up.
        monitor.observe(60.0, 100, 10, [0.3])
        assert not monitor.overloaded
        assert gauge(metrics, "vigil_agent_overloaded") == 0
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("agent_overloaded", "warning"), ("agent_caught_up", "info")]
    said = logs[0]
    assert said["lateness_s"] >= 8.0 and said["concurrency"] == 100
    assert "--concurrency" in said["advice"]
    # Every leased slot's lateness is in the histogram.
    assert metrics.registry.get_sample_value("vigil_agent_lease_lateness_seconds_count") == 54
