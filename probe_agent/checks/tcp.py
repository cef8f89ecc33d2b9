"""TCP checks: can a connection be opened within the timeout? Timings: dns, connect, total."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass

from probe_agent.checks.base import (
    CONNECTION_FAILED,
    CONNECTION_REFUSED,
    DNS_FAILURE,
    TIMEOUT,
    Attempt,
    is_refused,
    ms_between,
)
from probe_agent.deadlines import deadline
from shared.checks import TcpCheck
from shared.protocol import CheckResult, Lease, Timings

_Address = tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]


@dataclass
class _Times:
    dns_ms: float | None = None
    connect_ms: float | None = None


def _literal(host: str, port: int) -> list[_Address] | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, (host, port, 0, 0))]
    return [(socket.AF_INET, (host, port))]


async def _resolve(host: str, port: int, times: _Times) -> list[_Address]:
    literal = _literal(host, port)
    if literal is not None:
        return literal
    started = time.perf_counter()
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    times.dns_ms = ms_between(started, time.perf_counter())
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]  # type: ignore[misc]


async def _connect(addresses: list[_Address], times: _Times) -> str:
    """Connect to each address in turn; the first that accepts wins. Returns its IP."""
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
        return sockaddr[0]
    raise last


class TcpRunner:
    kind = "tcp"

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
                addresses = await _resolve(host, check.port, times)
                address = await _connect(addresses, times)
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
