"""DNS checks with dnspython's asyncio resolver: ask for one record type, compare the answers.

Down when the name does not exist (``DNS_NXDOMAIN``), has no record of the type
(``DNS_NO_ANSWER``), the answers do not match the expected values (``DNS_MISMATCH``), no answer
came within the timeout (``TIMEOUT``) or every server failed (``DNS_FAILURE``). The answers are
in ``details`` either way.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any, cast

import dns.asyncresolver
import dns.exception
import dns.rdata
import dns.resolver

from probe_agent.checks.base import Attempt, GuardedRunner
from probe_agent.netguard import SsrfBlocked
from shared.checks import DnsCheck
from shared.codes import (
    DNS_FAILURE,
    DNS_MISMATCH,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    PROBE_ERROR,
    TIMEOUT,
)
from shared.protocol import CheckResult, Lease, Timings


@dataclass(frozen=True)
class Answer:
    """One record as results show it, and the forms of it an expected value may take."""

    text: str
    keys: frozenset[str]


def normalize(record_type: str, value: str) -> str:
    """Addresses in canonical form, names lowercased without the final dot, TXT as given."""
    if record_type == "TXT":
        return value
    if record_type in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip()
    return " ".join(token.rstrip(".").lower() for token in value.split())


def to_answer(record_type: str, rdata: dns.rdata.Rdata) -> Answer:
    if record_type == "TXT":
        strings: tuple[bytes, ...] = cast(Any, rdata).strings
        text = b"".join(strings).decode("utf-8", "replace")
        return Answer(text, frozenset({text}))
    text = normalize(record_type, rdata.to_text())
    keys = {text}
    tokens = text.split()
    if record_type == "MX" and len(tokens) == 2:
        keys.add(tokens[1])  # the exchange alone
    elif record_type == "SOA" and tokens:
        keys.add(tokens[0])  # the primary name server alone
    return Answer(text, frozenset(keys))


@dataclass(frozen=True)
class Comparison:
    missing: list[str]
    unexpected: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def compare(check: DnsCheck, answers: list[Answer]) -> Comparison:
    """``contains``: every expected value is answered; ``equals``: and nothing else is."""
    expected = [normalize(check.record_type, value) for value in check.expected]
    missing = [
        raw
        for raw, value in zip(check.expected, expected, strict=True)
        if not any(value in answer.keys for answer in answers)
    ]
    unexpected: list[str] = []
    if check.match == "equals":
        wanted = set(expected)
        unexpected = [answer.text for answer in answers if not answer.keys & wanted]
    return Comparison(missing, unexpected)


@functools.cache
def _system_resolver() -> dns.asyncresolver.Resolver:
    # Reads /etc/resolv.conf once; dnspython's resolver keeps no cache unless given one.
    return dns.asyncresolver.Resolver()


def resolver_for(check: DnsCheck) -> dns.asyncresolver.Resolver:
    """The resolver the check asks. Raises ``NoResolverConfiguration`` without a system one."""
    if check.server is None:
        return _system_resolver()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [check.server]
    resolver.port = check.port
    return resolver


def _where(check: DnsCheck) -> str:
    if check.server is None:
        return "the system resolver"
    host = f"[{check.server}]" if ":" in check.server else check.server
    return f"{host}:{check.port}"


class DnsRunner(GuardedRunner):
    kind = "dns"

    async def run(self, check: DnsCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        query = f"{check.record_type} {check.name}"
        details: dict[str, Any] = {
            "name": check.name,
            "record_type": check.record_type,
            "resolver": _where(check),
            "answers": [],
        }

        def down(message: str, code: str) -> CheckResult:
            timings = Timings(dns_ms=attempt.elapsed_ms())
            return attempt.finish(
                "down", timings=timings, error=message, error_code=code, details=details
            )

        if check.server is not None:
            # The check's own server is a target like any other (the system resolver is the
            # agent's, not the tenant's).
            try:
                self.policy(lease).check(check.server, [check.server], check.port)
            except SsrfBlocked as exc:
                return attempt.blocked(exc, details=details)
        try:
            resolver = resolver_for(check)
        except dns.resolver.NoResolverConfiguration:
            return attempt.finish(
                "error",
                error="this agent has no system resolver configured; give the check a server",
                error_code=PROBE_ERROR,
                details=details,
            )
        try:
            answer = await resolver.resolve(
                check.name,
                check.record_type,
                raise_on_no_answer=False,
                lifetime=check.timeout / 1000,
                search=False,
            )
        except dns.resolver.NXDOMAIN:
            return down(f"{check.name} does not exist (NXDOMAIN)", DNS_NXDOMAIN)
        except dns.exception.Timeout:
            return down(f"no answer to {query} within {check.timeout} ms", TIMEOUT)
        except dns.resolver.NoNameservers as exc:
            return down(f"{_where(check)} could not answer {query}: {exc}", DNS_FAILURE)
        except dns.exception.DNSException as exc:
            return down(f"{query} failed: {exc}", DNS_FAILURE)

        answers = [to_answer(check.record_type, rdata) for rdata in answer.rrset or ()]
        details["answers"] = [a.text for a in answers]
        if answer.rrset is not None:
            details["ttl"] = answer.rrset.ttl
        if not answers:
            return down(f"{check.name} has no {check.record_type} record", DNS_NO_ANSWER)
        comparison = compare(check, answers)
        if not comparison.ok:
            details["missing"] = comparison.missing
            details["unexpected"] = comparison.unexpected
            parts = []
            if comparison.missing:
                parts.append(f"missing {', '.join(comparison.missing)}")
            if comparison.unexpected:
                parts.append(f"unexpected {', '.join(comparison.unexpected)}")
            return down(f"{query} answers do not match: {'; '.join(parts)}", DNS_MISMATCH)
        timings = Timings(dns_ms=attempt.elapsed_ms())
        return attempt.finish("up", timings=timings, details=details)
