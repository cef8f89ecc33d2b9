"""TCP checks: can a connection be opened within the timeout? Timings: dns, connect, total."""

from __future__ import annotations

from probe_agent.checks.base import Attempt, GuardedRunner
from probe_agent.checks.stream import Stream
from probe_agent.deadlines import deadline
from probe_agent.netguard import SsrfBlocked
from shared.checks import TcpCheck
from shared.codes import TIMEOUT
from shared.protocol import CheckResult, Lease, Timings


class TcpRunner(GuardedRunner):
    kind = "tcp"
    # Every await of a check runs under ``deadline(check.timeout)`` (see ``run_lease``).
    bounded = True

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        stream = Stream.to(check.host, check.port)

        def timings() -> Timings:
            return stream.timings(attempt.elapsed_ms())

        try:
            with deadline(check.timeout / 1000):
                sock = await stream.open(self.policy(lease))
            sock.close()
        except SsrfBlocked as exc:
            return attempt.blocked(exc, timings=timings())
        except TimeoutError:
            message = f"no connection to {stream.where} within {check.timeout} ms"
            return attempt.finish("down", timings=timings(), error=message, error_code=TIMEOUT)
        except OSError as exc:
            message, code = stream.failure(exc)
            return attempt.finish("down", timings=timings(), error=message, error_code=code)
        return attempt.finish("up", timings=timings(), details={"address": stream.address})
