"""TCP checks: can a connection be opened within the timeout? Timings: dns, connect, total."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

from probe_agent.checks.base import Attempt, is_refused, ms_between
from probe_agent.deadlines import deadline
from probe_agent.netguard import Address, Policy, SsrfBlocked, resolve_stream
from shared.checks import TcpCheck
from shared.codes import CONNECTION_FAILED, CONNECTION_REFUSED, DNS_FAILURE, TIMEOUT
from shared.protocol import CheckResult, Lease, Timings


@dataclass
class _Times:
    dns_ms: float | None = None
    connect_ms: float | None = None


async def _resolve(host: str, port: int, times: _Times, policy: Policy) -> list[Address]:
    """The addresses of ``host`` the SSRF guard let through (``SsrfBlocked`` if any is not)."""
    addresses, times.dns_ms = await resolve_stream(host, port, policy)
    return addresses


async def _connect(addresses: list[Address], times: _Times) -> str:
    """Connect to each (validated) address in turn; the first that accepts wins. Returns its
    IP."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    last: OSError = OSError("no address to connect to")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            last = exc
            continue
        finally:
            sock.close()
        times.connect_ms = ms_between(started, time.perf_counter())
        return str(sockaddr[0])
    raise last


class TcpRunner:
    kind = "tcp"

    def __init__(self, *, ssrf_exempt: frozenset[tuple[str, int]] = frozenset()) -> None:
        # Listeners (address, port) the SSRF guard lets through regardless (see Policy).
        self._ssrf_exempt = ssrf_exempt

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        host = check.host.strip().strip("[]")
        where = f"{host}:{check.port}"
        times = _Times()

        def timings() -> Timings:
            return Timings(
                dns_ms=times.dns_ms, connect_ms=times.connect_ms, total_ms=attempt.elapsed_ms()
            )

        try:
            with deadline(check.timeout / 1000):
                policy = Policy.for_lease(lease, self._ssrf_exempt)
                addresses = await _resolve(host, check.port, times, policy)
                address = await _connect(addresses, times)
        except SsrfBlocked as exc:
            times.dns_ms = exc.dns_ms
            return attempt.blocked(exc, timings=timings())
        except TimeoutError:
            message = f"no connection to {where} within {check.timeout} ms"
            return attempt.finish("down", timings=timings(), error=message, error_code=TIMEOUT)
        except socket.gaierror as exc:
            message = f"DNS lookup of {host} failed: {exc.strerror or exc}"
            return attempt.finish("down", timings=timings(), error=message, error_code=DNS_FAILURE)
        except OSError as exc:
            if is_refused(exc):
                message, code = f"connection refused by {where}", CONNECTION_REFUSED
            else:
                message, code = (
                    f"cannot connect to {where}: {exc.strerror or exc}",
                    CONNECTION_FAILED,
                )
            return attempt.finish("down", timings=timings(), error=message, error_code=code)
        return attempt.finish("up", timings=timings(), details={"address": address})
