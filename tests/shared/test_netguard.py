"""The SSRF block list, including the IPv6 forms that smuggle a blocked IPv4 address, and the
one reading of a host (every numeric IPv4 spelling the C library accepts)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.netguard import (
    BLOCKED_V4,
    blocked_range,
    canonical_host,
    embedded_v4s,
    ip_literal,
    is_localhost,
)

TEREDO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"


def test_teredo_carries_its_server_and_its_inverted_client() -> None:
    assert embedded_v4s(ipaddress.IPv6Address(TEREDO_LOOPBACK)) == (
        ipaddress.IPv4Address("65.54.227.120"),
        ipaddress.IPv4Address("127.0.0.1"),
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.254", "169.254.0.0/16"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("10.1.2.3", "10.0.0.0/8"),
        ("172.31.255.255", "172.16.0.0/12"),
        ("192.168.1.1", "192.168.0.0/16"),
        ("198.19.0.1", "198.18.0.0/15"),
        ("0.0.0.0", "0.0.0.0/8"),
        ("224.0.0.251", "224.0.0.0/4"),
        ("255.255.255.255", "240.0.0.0/4"),
        ("::1", "::1/128"),
        ("fd00::1", "fc00::/7"),
        ("fe80::1", "fe80::/10"),
        ("ff02::1", "ff00::/8"),
        ("::ffff:10.0.0.1", "10.0.0.0/8 (embedded in ::ffff:a00:1)"),
        ("64:ff9b::a9fe:a9fe", "169.254.0.0/16 (embedded in 64:ff9b::a9fe:a9fe)"),
        ("2002:7f00:1::", "127.0.0.0/8 (embedded in 2002:7f00:1::)"),
        ("not an ip", "invalid address"),
        # Every form that carries an IPv4 address, each with a blocked one.
        ("::127.0.0.1", "127.0.0.0/8 (embedded in ::7f00:1)"),  # IPv4-compatible
        ("::ffff:0:7f00:1", "127.0.0.0/8 (embedded in ::ffff:0:7f00:1)"),  # IPv4-translated
        ("64:ff9b::7f00:1", "127.0.0.0/8 (embedded in 64:ff9b::7f00:1)"),  # NAT64
        # Teredo: server 65.54.227.120, client 127.0.0.1 (its bits inverted in the address).
        (TEREDO_LOOPBACK, f"127.0.0.0/8 (embedded in {TEREDO_LOOPBACK})"),
        ("2001:470::5efe:a00:1", "10.0.0.0/8 (embedded in 2001:470::5efe:a00:1)"),  # ISATAP
        ("2001:470::200:5efe:a00:1", "10.0.0.0/8 (embedded in 2001:470::200:5efe:a00:1)"),
        # 6to4 of a public address whose interface id is ISATAP for a private one.
        ("2002:808:808::5efe:a00:1", "10.0.0.0/8 (embedded in 2002:808:808::5efe:a00:1)"),
        # Blocked whole, whatever they carry.
        ("::8.8.8.8", "::/96"),
        ("64:ff9b:1::808:808", "64:ff9b:1::/48"),
        ("64:ff9b:1:ffff::1", "64:ff9b:1::/48"),
        ("::", "::/128"),
        ("fe80::1%eth0", "fe80::/10"),
    ],
)
def test_blocked(address: str, expected: str) -> None:
    assert blocked_range(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "1.1.1.1",
        "2606:2800:220:1::",
        "::ffff:8.8.8.8",
        "2002:0808:0808::",
        "::ffff:0:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
        "2001:470::5efe:8.8.8.8",
        "64:ff9b:2::1",  # just past the local-use NAT64 /48
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_range(address) is None


def test_ip_literals() -> None:
    assert ip_literal("[::1]") == ipaddress.ip_address("::1")
    assert ip_literal("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert ip_literal("example.com") is None
    assert ip_literal("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert ip_literal("1.2.3.4 x") is None  # glibc's inet_aton ignores the rest; we do not


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("[::FFFF:127.0.0.1]", "::ffff:7f00:1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("[fe80::1%Eth0]", "fe80::1%Eth0"),  # the zone id is an interface name: kept as is
        ("Example.COM.", "example.com"),
        ("example.com", "example.com"),
        ("0x", "0x"),  # not an address: a (strange) name
        ("08.1.1.1", "08.1.1.1"),  # 8 is no octal digit
        ("4294967296", "4294967296"),  # more than 32 bits
    ],
)
def test_canonical_host(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical


@given(
    st.lists(
        st.one_of(
            st.integers(0, 2**32).map(str),
            st.integers(0, 2**32).map(lambda n: f"0x{n:x}"),
            st.integers(0, 2**32).map(lambda n: f"0{n:o}"),
            st.text("0123456789abcdefx", max_size=6),
        ),
        min_size=1,
        max_size=5,
    ).map(".".join)
)
def test_ipv4_spellings_are_read_as_the_c_library_reads_them(text: str) -> None:
    # One trailing dot is the DNS root, dropped before reading: ``127.0.0.1.`` is 127.0.0.1.
    try:
        address = socket.inet_aton(text.removesuffix("."))
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(address)
    except OSError:
        expected = None
    assert ip_literal(text) == expected


def test_localhost_names() -> None:
    for host in ("localhost", "LOCALHOST.", "api.localhost", "a.b.localhost"):
        assert is_localhost(host), host
    for host in ("localhost.example.com", "notlocalhost", "127.0.0.1", "example.com"):
        assert not is_localhost(host), host


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_form_gets_the_same_verdict(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    plain = blocked_range(v4) is not None
    assert plain == any(v4 in net for net in BLOCKED_V4)
    for wrapped in (
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address((0x64FF9B << 96) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
        ipaddress.IPv6Address((0xFFFF << 32) | n),  # translated
        ipaddress.IPv6Address((0x2001_0000 << 96) | (0x08080808 << 64) | (n ^ 0xFFFFFFFF)),
        ipaddress.IPv6Address((0x2001_0470 << 96) | (0x5EFE << 32) | n),  # ISATAP
    ):
        assert v4 in embedded_v4s(wrapped)
        assert (blocked_range(wrapped) is not None) == plain
