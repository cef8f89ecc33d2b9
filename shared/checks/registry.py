"""The check kinds, one line each: what the control plane validates, seals and schedules, and
what the agent must be able to run (``probe_agent.checks.build_runners``).

The per-kind tables the control plane reads (secret fields, interval floors and defaults, field
error codes) are derived from here, so a kind is declared once, in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from shared.checks import dns, domain_expiry, heartbeat, http, icmp, tcp, tls_cert
from shared.checks.common import KindInfo

# The wire union, tagged on ``type``: one member per line of KINDS below (a test holds them
# together). It is spelt out because a type checker cannot read a union built at run time.
CheckSpec = (
    http.HttpCheck
    | tcp.TcpCheck
    | dns.DnsCheck
    | tls_cert.TlsCertCheck
    | domain_expiry.DomainExpiryCheck
    | heartbeat.HeartbeatCheck
    | icmp.IcmpCheck
)


def _by_kind(*infos: KindInfo[Any]) -> Mapping[str, KindInfo[Any]]:
    kinds = {info.kind: info for info in infos}
    if len(kinds) != len(infos):
        raise ValueError("two check kinds share a wire tag")
    return MappingProxyType(kinds)


KINDS: Mapping[str, KindInfo[Any]] = _by_kind(
    http.KIND,
    tcp.KIND,
    dns.KIND,
    tls_cert.KIND,
    domain_expiry.KIND,
    heartbeat.KIND,
    icmp.KIND,
)

# Kinds the control plane receives instead of an agent probing them: never leased, no runner.
PUSH_KINDS = frozenset(kind for kind, info in KINDS.items() if info.push)

# Fields of a check that hold credentials: sealed at rest, redacted on every read. Secret header
# values (``secret_header_names``) are sealed and redacted too, each under its own field.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {k: i.secret_fields for k, i in KINDS.items()}

# Interval floors and defaults per kind, in seconds.
KIND_MIN_INTERVAL: dict[str, int] = {k: i.min_interval for k, i in KINDS.items()}
KIND_DEFAULT_INTERVAL: dict[str, int] = {k: i.default_interval for k, i in KINDS.items()}


def field_codes(kind: str) -> dict[str, str]:
    """``kind``'s map of JSON pointer (relative to the spec, ``/url``) to the error code a wrong
    type or value there answers with. ``KeyError`` for an unknown kind."""
    return dict(KINDS[kind].field_codes)


def all_field_codes() -> dict[str, str]:
    """Every kind's field codes in one map, for a body whose kind is not known before it is
    decoded; a pointer two kinds share has one code (``ValueError`` otherwise)."""
    merged: dict[str, str] = {}
    for kind, info in KINDS.items():
        for pointer, code in info.field_codes.items():
            if merged.setdefault(pointer, code) != code:
                raise ValueError(
                    f"{kind} maps {pointer} to {code}, another kind to {merged[pointer]}"
                )
    return merged
