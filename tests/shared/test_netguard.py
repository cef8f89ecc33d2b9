"""The SSRF block list, including the IPv6 forms that smuggle a blocked IPv4 address."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.netguard import BLOCKED_V4, blocked_range, embedded_v4, ip_literal


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
    ],
)
def test_blocked(address: str, expected: str) -> None:
    assert blocked_range(address) == expected


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "1.1.1.1", "2606:2800:220:1::", "::ffff:8.8.8.8", "2002:0808:0808::"],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_range(address) is None


def test_ip_literals() -> None:
    assert ip_literal("[::1]") == ipaddress.ip_address("::1")
    assert ip_literal("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert ip_literal("example.com") is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_form_gets_the_same_verdict(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    plain = blocked_range(v4) is not None
    assert plain == any(v4 in net for net in BLOCKED_V4)
    for wrapped in (
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address((0x64FF9B << 96) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
    ):
        assert embedded_v4(wrapped) == v4
        assert (blocked_range(wrapped) is not None) == plain
