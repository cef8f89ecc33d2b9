"""dns checks against a real UDP DNS server on 127.0.0.1 built with dnspython's message API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from probe_agent.checks import RUNNERS, run_lease
from probe_agent.checks.dns import DnsRunner
from shared.checks import DnsCheck
from shared.protocol import CheckResult
from tests.probe_agent.helpers import make_lease

ZONE: dict[tuple[str, str], list[str]] = {
    ("www.example.test.", "A"): ["192.0.2.10", "192.0.2.11"],
    ("www.example.test.", "AAAA"): ["2001:db8:0:0::1"],
    ("alias.example.test.", "CNAME"): ["www.example.test."],
    ("example.test.", "MX"): ["10 mx1.example.test.", "20 mx2.example.test."],
    ("example.test.", "TXT"): ['"v=spf1 -all"', '"part one, " "part two"'],
    ("example.test.", "NS"): ["ns1.example.test.", "ns2.example.test."],
    ("example.test.", "SOA"): [
        "ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300"
    ],
    ("_dmarc.example.test.", "TXT"): ['"v=DMARC1; p=reject"'],
}
SILENT = "slow.example.test."
SERVFAIL = "broken.example.test."


class DnsServer(asyncio.DatagramProtocol):
    """Answers from ``ZONE``: NXDOMAIN for unknown names, NOERROR and no answer for a known name
    without records of the type, SERVFAIL for ``SERVFAIL``, never anything for ``SILENT``."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name == SILENT:
            return
        response = dns.message.make_response(query)
        if name == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in ZONE:
            rrset = dns.rrset.from_text_list(question.name, 300, "IN", rdtype, ZONE[name, rdtype])
            response.answer.append(rrset)
        elif not any(known == name for known, _ in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(DnsServer, local_addr=("127.0.0.1", 0))
    try:
        yield server
    finally:
        transport.close()


async def check(server: DnsServer, name: str, record_type: str = "A", **kw: Any) -> CheckResult:
    spec = DnsCheck(
        name=name,
        record_type=record_type,  # type: ignore[arg-type]
        server="127.0.0.1",
        port=server.port,
        **kw,
    )
    return await DnsRunner().run(spec, make_lease(spec))


@pytest.mark.parametrize(
    ("name", "record_type", "answers"),
    [
        ("www.example.test", "A", ["192.0.2.10", "192.0.2.11"]),
        ("www.example.test", "AAAA", ["2001:db8::1"]),
        ("alias.example.test", "CNAME", ["www.example.test"]),
        ("example.test", "MX", ["10 mx1.example.test", "20 mx2.example.test"]),
        ("example.test", "TXT", ["v=spf1 -all", "part one, part two"]),
        ("example.test", "NS", ["ns1.example.test", "ns2.example.test"]),
        (
            "example.test",
            "SOA",
            ["ns1.example.test hostmaster.example.test 2024010101 7200 3600 1209600 300"],
        ),
        ("_dmarc.example.test", "TXT", ["v=DMARC1; p=reject"]),
    ],
)
async def test_each_record_type_is_answered_and_reported(
    dns_server: DnsServer, name: str, record_type: str, answers: list[str]
) -> None:
    result = await check(dns_server, name, record_type)
    assert result.status == "up", result.error
    assert result.error is None and result.error_code is None
    assert sorted(result.details["answers"]) == sorted(answers)
    assert result.details["ttl"] == 300
    assert result.details["record_type"] == record_type
    assert result.details["resolver"] == f"127.0.0.1:{dns_server.port}"
    assert result.timings.dns_ms is not None and result.latency_ms is not None
    # The check asked the configured server, for exactly this question.
    assert dns_server.queries == [(f"{name}.", record_type)]


@pytest.mark.parametrize(
    ("name", "record_type", "expected"),
    [
        ("www.example.test", "A", ["192.0.2.11"]),
        ("www.example.test", "AAAA", ["2001:DB8::0:1"]),
        ("alias.example.test", "CNAME", ["WWW.Example.Test."]),
        ("example.test", "MX", ["20 mx2.example.test"]),
        ("example.test", "MX", ["mx1.example.test."]),
        ("example.test", "TXT", ["part one, part two"]),
        ("example.test", "NS", ["ns2.example.test"]),
        ("example.test", "SOA", ["ns1.example.test"]),
    ],
)
async def test_contains_passes_when_every_expected_value_is_answered(
    dns_server: DnsServer, name: str, record_type: str, expected: list[str]
) -> None:
    result = await check(dns_server, name, record_type, expected=expected)
    assert result.status == "up", result.error


async def test_contains_fails_on_a_missing_value(dns_server: DnsServer) -> None:
    result = await check(dns_server, "www.example.test", expected=["192.0.2.10", "192.0.2.99"])
    assert result.status == "down"
    assert result.error_code == "DNS_MISMATCH"
    assert result.details["missing"] == ["192.0.2.99"]
    assert result.details["unexpected"] == []
    assert "missing 192.0.2.99" in (result.error or "")
    assert sorted(result.details["answers"]) == ["192.0.2.10", "192.0.2.11"]


async def test_equals_passes_on_the_same_set_in_any_order_and_case(dns_server: DnsServer) -> None:
    result = await check(
        dns_server,
        "example.test",
        "NS",
        expected=["NS2.example.test.", "ns1.EXAMPLE.test"],
        match="equals",
    )
    assert result.status == "up", result.error


async def test_equals_fails_on_an_extra_answer(dns_server: DnsServer) -> None:
    result = await check(dns_server, "www.example.test", expected=["192.0.2.10"], match="equals")
    assert result.status == "down"
    assert result.error_code == "DNS_MISMATCH"
    assert result.details["missing"] == []
    assert result.details["unexpected"] == ["192.0.2.11"]
    assert "unexpected 192.0.2.11" in (result.error or "")


async def test_txt_values_compare_exactly(dns_server: DnsServer) -> None:
    result = await check(dns_server, "example.test", "TXT", expected=["V=SPF1 -ALL"])
    assert result.status == "down"
    assert result.error_code == "DNS_MISMATCH"


async def test_a_name_that_does_not_exist_is_nxdomain(dns_server: DnsServer) -> None:
    result = await check(dns_server, "nope.example.test")
    assert result.status == "down"
    assert result.error_code == "DNS_NXDOMAIN"
    assert result.error == "nope.example.test does not exist (NXDOMAIN)"
    assert result.details["answers"] == []


async def test_a_name_without_records_of_the_type_has_no_answer(dns_server: DnsServer) -> None:
    result = await check(dns_server, "alias.example.test", "MX")
    assert result.status == "down"
    assert result.error_code == "DNS_NO_ANSWER"
    assert result.error == "alias.example.test has no MX record"


async def test_a_server_that_never_answers_is_a_timeout(dns_server: DnsServer) -> None:
    result = await check(dns_server, "slow.example.test", timeout=300)
    assert result.status == "down"
    assert result.error_code == "TIMEOUT"
    assert result.error == "no answer to A slow.example.test within 300 ms"
    assert dns_server.queries and all(q == ("slow.example.test.", "A") for q in dns_server.queries)


async def test_a_failing_server_is_a_dns_failure(dns_server: DnsServer) -> None:
    result = await check(dns_server, "broken.example.test")
    assert result.status == "down"
    assert result.error_code == "DNS_FAILURE"
    assert f"127.0.0.1:{dns_server.port}" in (result.error or "")


async def test_dns_runs_through_the_registry(dns_server: DnsServer) -> None:
    spec = DnsCheck(
        name="www.example.test",
        server="127.0.0.1",
        port=dns_server.port,
        expected=["192.0.2.10", "192.0.2.11"],
        match="equals",
    )
    lease = make_lease(spec)
    result = await run_lease(lease, RUNNERS)
    assert result.status == "up", result.error
    assert result.lease_id == lease.lease_id
    assert result.target_id == lease.target_id
