"""ICMP checks: ``count`` echo requests; packet loss and round-trip times decide the status.

All replies back → up; some lost → degraded; all lost → down. ``details`` carries the address,
the socket mode, sent/received, the loss in percent and RTT min/avg/max; ``latency_ms`` is the
mean RTT (the elapsed time when nothing came back).

Sockets: an unprivileged ICMP datagram socket (``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``,
which Linux allows when ``net.ipv4.ping_group_range`` covers the process's group; the kernel then
owns the echo identifier and hands this socket only its own replies), else a raw socket (root or
CAP_NET_RAW; every ICMP packet of the host arrives there, so replies are matched on identifier,
sequence and a per-check token). Neither permitted → status ``error``, ``ICMP_NOT_PERMITTED``:
the probe could not run, which says nothing about the host. IPv6 uses ICMPv6 the same way.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Literal

from probe_agent.checks.base import Attempt, ms_between
from probe_agent.deadlines import deadline
from probe_agent.netguard import Policy, SsrfBlocked
from shared.checks import IcmpCheck
from shared.checks.icmp import DEFAULT_ICMP_INTERVAL_MS
from shared.codes import DNS_FAILURE, HOST_UNREACHABLE, ICMP_NOT_PERMITTED, PACKET_LOSS, TIMEOUT
from shared.netguard import ip_literal
from shared.protocol import CheckResult, Lease, Timings

Mode = Literal["dgram", "raw"]
# "auto": the unprivileged datagram socket when the system allows it, else a raw socket.
ModePreference = Literal["auto", "dgram", "raw"]

_ECHO_REQUEST = {4: 8, 6: 128}
_ECHO_REPLY = {4: 0, 6: 129}
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_TOKEN_LEN = 8
_RECV_SIZE = 4096


class IcmpNotPermitted(Exception):
    """Neither an unprivileged datagram socket nor a raw socket may be opened."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An echo request; for ICMPv6 the kernel fills in the checksum (it covers a pseudo-header)."""
    kind = _ECHO_REQUEST[version]
    header = _HEADER.pack(kind, 0, 0, ident, seq)
    if version == 6:
        return header + payload
    return _HEADER.pack(kind, 0, checksum(header + payload), ident, seq) + payload


def open_socket(version: int, preference: ModePreference = "auto") -> tuple[socket.socket, Mode]:
    """A non-blocking ICMP socket of the first mode the system permits; raises
    ``IcmpNotPermitted`` naming why each one was refused."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
    modes: tuple[Mode, ...] = ("dgram", "raw") if preference == "auto" else (preference,)
    refusals: list[str] = []
    for mode in modes:
        kind = socket.SOCK_DGRAM if mode == "dgram" else socket.SOCK_RAW
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.EINVAL):
                refusals.append(f"{mode}: {exc.strerror or exc}")
                continue
            raise
        sock.setblocking(False)
        return sock, mode
    raise IcmpNotPermitted("; ".join(refusals))


@dataclass
class _Exchange:
    version: int
    mode: Mode
    ident: int
    token: bytes
    sent_at: dict[int, float] = field(default_factory=dict)
    rtts: dict[int, float] = field(default_factory=dict)

    def match(self, packet: bytes) -> int | None:
        """The sequence number ``packet`` answers, if it is a reply to this exchange."""
        if self.version == 4 and self.mode == "raw":
            if len(packet) < 20:
                return None
            packet = packet[(packet[0] & 0x0F) * 4 :]  # raw IPv4 sockets see the IP header
        if len(packet) < _HEADER.size + _TOKEN_LEN:
            return None
        kind, _, _, ident, seq = _HEADER.unpack_from(packet)
        if kind != _ECHO_REPLY[self.version]:
            return None
        # A datagram socket only ever gets its own echoes (the kernel rewrote the identifier).
        if self.mode == "raw" and ident != self.ident:
            return None
        if packet[_HEADER.size : _HEADER.size + _TOKEN_LEN] != self.token:
            return None
        if seq not in self.sent_at or seq in self.rtts:
            return None
        return int(seq)


async def _receive(sock: socket.socket, exchange: _Exchange, count: int) -> None:
    loop = asyncio.get_running_loop()
    while len(exchange.rtts) < count:
        packet = await loop.sock_recv(sock, _RECV_SIZE)
        arrived = time.perf_counter()
        seq = exchange.match(packet)
        if seq is not None:
            exchange.rtts[seq] = (arrived - exchange.sent_at[seq]) * 1000


async def _send(
    sock: socket.socket, exchange: _Exchange, address: str, count: int, gap_s: float
) -> None:
    loop = asyncio.get_running_loop()
    dest = (address, 0) if exchange.version == 4 else (address, 0, 0, 0)
    for seq in range(count):
        if seq:
            await asyncio.sleep(gap_s)
        payload = exchange.token + os.urandom(24)
        packet = echo_request(exchange.version, exchange.ident, seq, payload)
        exchange.sent_at[seq] = time.perf_counter()
        try:
            await loop.sock_sendto(sock, packet, dest)
        except OSError:
            del exchange.sent_at[seq]  # never went out: not sent, not lost
            raise


async def _resolve(host: str, policy: Policy) -> tuple[str, int, float | None]:
    """(address, IP version, DNS time in ms or None for a literal). Every address the name
    resolves to is judged by the SSRF guard (``SsrfBlocked``), as for the other kinds."""
    literal = ip_literal(host)
    if literal is not None:
        policy.check(host, [str(literal)], 0)
        return str(literal), literal.version, None
    started = time.perf_counter()
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    dns_ms = ms_between(started, time.perf_counter())
    addresses = [str(info[4][0]).split("%", 1)[0] for info in infos]
    policy.check(host, addresses, 0)
    # Prefer IPv4 when a name has both: ICMPv6 echo is filtered on more paths.
    addresses.sort(key=lambda a: ipaddress.ip_address(a).version)
    return addresses[0], ipaddress.ip_address(addresses[0]).version, dns_ms


class IcmpRunner:
    kind = "icmp"

    def __init__(self, *, mode: ModePreference = "auto") -> None:
        # ``mode`` forces one socket kind; "auto" takes the first the system permits.
        self.mode: ModePreference = mode

    async def run(self, check: IcmpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        host = check.host.strip().strip("[]")
        count = check.count
        gap_ms = DEFAULT_ICMP_INTERVAL_MS if check.interval is None else check.interval
        dns_ms: float | None = None
        try:
            with deadline(check.timeout / 1000):
                address, version, dns_ms = await _resolve(host, Policy.for_lease(lease))
        except TimeoutError:
            message = f"DNS lookup of {host} took longer than {check.timeout} ms"
            return attempt.finish("down", error=message, error_code=TIMEOUT)
        except SsrfBlocked as exc:
            return attempt.blocked(exc)
        except (socket.gaierror, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, socket.gaierror) else "no address"
            message = f"DNS lookup of {host} failed: {reason or exc}"
            return attempt.finish("down", error=message, error_code=DNS_FAILURE)
        try:
            sock, mode = open_socket(version, self.mode)
        except IcmpNotPermitted as exc:
            message = (
                "this agent may not send ICMP: neither an unprivileged ICMP socket "
                "(net.ipv4.ping_group_range) nor a raw socket (root / CAP_NET_RAW) is permitted "
                f"({exc})"
            )
            return attempt.finish("error", error=message, error_code=ICMP_NOT_PERMITTED)
        exchange = _Exchange(
            version, mode, ident=int.from_bytes(os.urandom(2)), token=os.urandom(8)
        )
        send_error: OSError | None = None
        remaining_s = max(0.001, check.timeout / 1000 - attempt.elapsed_ms() / 1000)
        receiver = asyncio.ensure_future(_receive(sock, exchange, count))
        try:
            with deadline(remaining_s):
                try:
                    await _send(sock, exchange, address, count, gap_ms / 1000)
                except OSError as exc:
                    send_error = exc
                if exchange.sent_at:  # wait for the replies to what went out
                    await receiver
        except TimeoutError:
            pass
        finally:
            if not receiver.done():
                receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            sock.close()
        return self._verdict(attempt, check, address, mode, exchange, dns_ms, send_error)

    @staticmethod
    def _verdict(
        attempt: Attempt,
        check: IcmpCheck,
        address: str,
        mode: Mode,
        exchange: _Exchange,
        dns_ms: float | None,
        send_error: OSError | None,
    ) -> CheckResult:
        sent = len(exchange.sent_at)
        rtts = [round(exchange.rtts[seq], 3) for seq in sorted(exchange.rtts)]
        received = len(rtts)
        loss = round(100.0 * (check.count - received) / check.count, 1)
        details: dict[str, object] = {
            "address": address,
            "mode": mode,
            "sent": sent,
            "received": received,
            "packet_loss": loss,
        }
        if rtts:
            avg = round(sum(rtts) / received, 3)
            details.update(rtt_min_ms=min(rtts), rtt_avg_ms=avg, rtt_max_ms=max(rtts), rtts_ms=rtts)
            timings = Timings(dns_ms=dns_ms, total_ms=avg)
        else:
            timings = Timings(dns_ms=dns_ms, total_ms=attempt.elapsed_ms())
        if send_error is not None and not rtts:
            reason = send_error.strerror or str(send_error)
            message = f"cannot send ICMP echo to {address}: {reason}"
            return attempt.finish(
                "down", timings=timings, error=message, error_code=HOST_UNREACHABLE, details=details
            )
        if received == 0:
            message = (
                f"no reply from {address} to {check.count} echo request(s) within "
                f"{check.timeout} ms (100% packet loss)"
            )
            return attempt.finish(
                "down", timings=timings, error=message, error_code=TIMEOUT, details=details
            )
        if received < check.count:
            message = (
                f"{check.count - received} of {check.count} echo requests to {address} lost "
                f"({loss:g}% packet loss)"
            )
            return attempt.finish(
                "degraded", timings=timings, error=message, error_code=PACKET_LOSS, details=details
            )
        return attempt.finish("up", timings=timings, details=details)
