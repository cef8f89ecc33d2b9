"""The SSRF block list: which addresses a probe must never connect to, and how a host is read.

One list, used by the control plane (IP-literal hosts at create time) and by the agent (every
resolved address, every redirect hop). IPv6 forms that embed an IPv4 address are judged by the
IPv4 addresses they carry, so ``::ffff:10.0.0.1`` is as blocked as ``10.0.0.1``: IPv4-mapped
(``::ffff:0:0/96``), IPv4-translated (``::ffff:0:0:0/96``), IPv4-compatible (``::/96``), NAT64
(``64:ff9b::/96``), 6to4 (``2002::/16``), Teredo (``2001::/32``: server and client) and ISATAP
interface ids (``…:0:5efe:a.b.c.d``, ``…:200:5efe:a.b.c.d``). An address is blocked when any IPv4
address it embeds is.

A host is read once, by ``canonical_host``, the way the system resolver would read it: the C
library's ``inet_aton`` takes ``127.1``, ``0x7f.1``, ``0177.0.0.1`` and ``2130706433`` for
``127.0.0.1`` without asking DNS, so a guard that judged the spelling instead of the address
would let them through.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        # IPv4-compatible, deprecated (RFC 4291 2.5.5.1): no public service is reached through
        # one, and some stacks still tunnel them to the IPv4 address they carry.
        "::/96",
        # Local-use NAT64 (RFC 8215): a translator of the operator's own network, which may put
        # the IPv4 address at any of RFC 6052's offsets, so the whole prefix is refused.
        "64:ff9b:1::/48",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
        "100::/64",  # discard
        "2001:db8::/32",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Bits 32-63 of an ISATAP interface id (RFC 5214 6.1), with the u/l bit clear or set.
_ISATAP_IDS = frozenset({0x00005EFE, 0x02005EFE})
_V4_MASK = 0xFFFFFFFF


def embedded_v4s(addr: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Every IPv4 address ``addr`` carries, in any of the forms above (none for a plain one).

    ``::`` and ``::1`` are not IPv4-compatible addresses: they are judged as themselves.
    """
    n = int(addr)
    found: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        found.append(addr.ipv4_mapped)
    elif addr in _TRANSLATED or addr in _NAT64 or (addr in _COMPATIBLE and n > 1):
        found.append(ipaddress.IPv4Address(n & _V4_MASK))
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)  # (server, client), the client's bits inverted back
    if (n >> 32) & _V4_MASK in _ISATAP_IDS:
        found.append(ipaddress.IPv4Address(n & _V4_MASK))
    return tuple(found)


def blocked_range(address: str | IPAddress) -> str | None:
    """The blocked range ``address`` falls in (as text), or None when it may be probed.

    Anything that is not an IP address at all is refused too (``"invalid address"``): a caller
    that cannot say what it connects to must not connect.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "invalid address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        for inner in embedded_v4s(ip):
            hit = blocked_range(inner)
            if hit:
                return f"{hit} (embedded in {ip})"
        for net in BLOCKED_V6:
            if ip in net:
                return str(net)
        return None
    for net4 in BLOCKED_V4:
        if ip in net4:
            return str(net4)
    return None


# One part of an IPv4 address as ``inet_aton`` reads it: hex, octal (a leading 0) or decimal.
_V4_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """``text`` as the C library's ``inet_aton`` reads it (``a``, ``a.b``, ``a.b.c``,
    ``a.b.c.d``, each part decimal, octal or hex, the last filling the bytes left), but with
    nothing after it: glibc ignores what follows a space, this does not."""
    parts = text.split(".")
    if len(parts) > 4 or not all(_V4_PART.fullmatch(p) for p in parts):
        return None
    values = [
        int(p, 16) if p[1:2] in ("x", "X") else int(p, 8 if p[0] == "0" else 10) for p in parts
    ]
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    n = last
    for i, v in enumerate(leading):
        n |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(n)


# Every character an IP address can be spelled with, in any form ``_read_host`` reads (IPv6,
# IPv4-mapped IPv6, and inet_aton's decimal, octal and 0x-hex parts), lower-cased.
_IP_CHARS = frozenset("0123456789abcdefx.:")


def _read_host(host: str) -> tuple[str, IPAddress | None]:
    """``host`` in its canonical text, and the IP address it is when it is one."""
    text = host
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    elif text.endswith("."):
        text = text[:-1]
    address, percent, zone = text.partition("%")
    address = address.lower()
    if not _IP_CHARS.issuperset(address):
        # A character no spelling of an address has (a name): what the parsers below would
        # conclude, without the cost of their exceptions (a bulk create reads 10,000 hosts).
        return address + percent + zone, None
    ip: IPAddress | None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None if percent else _inet_aton(address)
        if ip is None:
            return address + percent + zone, None
        return str(ip), ip
    if percent:  # a zone id only ever follows an IPv6 address
        if ip.version != 6:
            return address + percent + zone, None
        ip = ipaddress.IPv6Address(f"{ip}%{zone}")
    return str(ip), ip


def canonical_host(host: str) -> str:
    """``host`` as it is judged and connected to: lower-case, one trailing dot and IPv6 brackets
    off, and an IP address in its one canonical text (``0x7f.1`` -> ``127.0.0.1``,
    ``[::FFFF:7F00:1]`` -> ``::ffff:7f00:1``). An IPv6 zone id (``%eth0``) is kept as written;
    ``blocked_range`` ignores it. Anything else (a name) comes back lower-cased."""
    return _read_host(host)[0]


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one in any spelling the system resolver reads
    without DNS (``[::1]``, ``127.1``, ``2130706433``, ``127.0.0.1.``), else None."""
    return _read_host(host)[1]


# What a refusal of ``localhost`` names as its blocked "range".
LOCALHOST_RANGE = "localhost (RFC 6761: always loopback)"


def is_localhost(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a name under it: always loopback (RFC 6761 6.3),
    whatever a resolver says."""
    name = canonical_host(host)
    return name == "localhost" or name.endswith(".localhost")
