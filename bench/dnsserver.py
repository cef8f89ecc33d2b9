"""The bench's own DNS server (dnspython over UDP), so checks can name their targets instead of
giving IP literals and resolution shows up in the figures.

    python -m bench.dnsserver ADDRESS PORT ZONE TTL

Every name under ZONE has one A record, 127.0.0.1, with TTL seconds (0: never cached); AAAA is
an empty answer with the zone's SOA (negative TTL the same); other names are REFUSED. Counts
what it answered in its log at exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ANSWER_ADDRESS = "127.0.0.1"


def answer(wire: bytes, zone: dns.name.Name, ttl: int) -> bytes | None:
    """The response to one query (None for what is not a parsable query)."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # garbage on the socket: no answer, as a server would
        return None
    if not query.question:
        return None
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.AA
    q = query.question[0]
    if not q.name.is_subdomain(zone):
        resp.set_rcode(dns.rcode.REFUSED)
    elif q.rdtype == dns.rdatatype.A:
        resp.answer.append(
            dns.rrset.from_text(q.name, ttl, dns.rdataclass.IN, dns.rdatatype.A, ANSWER_ADDRESS)
        )
    else:
        soa = f"ns.{zone} hostmaster.{zone} 1 3600 600 86400 {ttl}"
        resp.authority.append(
            dns.rrset.from_text(zone, ttl, dns.rdataclass.IN, dns.rdatatype.SOA, soa)
        )
    return resp.to_wire()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, zone: dns.name.Name, ttl: int) -> None:
        self.zone, self.ttl, self.answered = zone, ttl, 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass, but is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        out = answer(data, self.zone, self.ttl)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)
            self.answered += 1


async def serve(address: str, port: int, zone: str, ttl: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Protocol(dns.name.from_text(zone), ttl), local_addr=(address, port)
    )
    print(f"dns: serving {zone} on {address}:{port} (ttl {ttl})", flush=True)
    try:
        await stop.wait()
    finally:
        transport.close()
        print(f"dns: answered {proto.answered} queries", flush=True)


if __name__ == "__main__":
    from probe_agent.cli import run_loop

    addr_arg, port_arg, zone_arg, ttl_arg = sys.argv[1:5]
    run_loop(serve(addr_arg, int(port_arg), zone_arg, int(ttl_arg)))
