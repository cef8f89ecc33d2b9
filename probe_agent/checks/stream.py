"""What tcp and tls_cert share: a TCP connection to the check's ``host:port``, opened through
the SSRF guard, with the time each phase took and, when it cannot be opened, why."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass

from probe_agent.checks.base import is_refused, ms_between
from probe_agent.netguard import Policy, SsrfBlocked, resolve_stream
from shared.codes import CONNECTION_FAILED, CONNECTION_REFUSED, DNS_FAILURE
from shared.protocol import Timings


@dataclass(slots=True)
class Stream:
    """The connection a check opens, and how far it got: milliseconds per phase and the
    address it reached."""

    # As connected to: no surrounding spaces, no IPv6 brackets.
    host: str
    port: int
    dns_ms: float | None = None
    connect_ms: float | None = None
    # The TLS handshake on the open connection, for a check that makes one (tls_cert).
    tls_ms: float | None = None
    address: str | None = None

    @classmethod
    def to(cls, host: str, port: int) -> Stream:
        return cls(host.strip().strip("[]"), port)

    @property
    def where(self) -> str:
        """``host:port``, as messages name the target."""
        return f"{self.host}:{self.port}"

    def timings(self, total_ms: float) -> Timings:
        return Timings(
            dns_ms=self.dns_ms, connect_ms=self.connect_ms, tls_ms=self.tls_ms, total_ms=total_ms
        )

    async def open(self, policy: Policy) -> socket.socket:
        """A connected, non-blocking TCP socket to one of the host's addresses, every one of
        them validated by the SSRF guard; each is tried in turn and the first that accepts wins.

        Raises ``SsrfBlocked`` when an address is blocked (``dns_ms`` still says how long
        resolving took), ``socket.gaierror`` when the name does not resolve and the last
        ``OSError`` when no address accepts.
        """
        try:
            addresses, self.dns_ms = await resolve_stream(self.host, self.port, policy)
        except SsrfBlocked as exc:
            self.dns_ms = exc.dns_ms
            raise
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        last: OSError = OSError("no address to connect to")
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await connect(loop, sock, sockaddr)
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                last = exc
                continue
            self.connect_ms = ms_between(started, time.perf_counter())
            self.address = str(sockaddr[0])
            return sock
        raise last

    def failure(self, exc: OSError) -> tuple[str, str]:
        """The message and code of a connection ``open`` could not open (a timeout aside): the
        name did not resolve, the target refused, or anything else on the way."""
        if isinstance(exc, socket.gaierror):
            return f"DNS lookup of {self.host} failed: {exc.strerror or exc}", DNS_FAILURE
        if is_refused(exc):
            return f"connection refused by {self.where}", CONNECTION_REFUSED
        return f"cannot connect to {self.where}: {exc.strerror or exc}", CONNECTION_FAILED


async def connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, sockaddr: tuple[object, ...]
) -> None:
    """Connect the non-blocking ``sock`` to ``sockaddr``, an address already resolved and judged
    (``resolve_stream``): ``connect`` is started at once and the socket awaited until writable.

    ``loop.sock_connect`` does the same after looking the address up again (uvloop runs every
    address, an IP literal too, through its ``getaddrinfo``, IDNA-encoding the host on the way):
    about a tenth of a TCP check's CPU for an answer this module already has. Raises the
    ``OSError`` of the failed connect (``ConnectionRefusedError`` for a refusal, ...); cancelled,
    it stops watching the socket (the caller closes it).
    """
    err = sock.connect_ex(sockaddr)
    if err == errno.EINPROGRESS:
        writable: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _set_done, writable)
        try:
            await writable
        finally:
            loop.remove_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
