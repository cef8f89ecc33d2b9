"""Check specs: a tagged union on ``type``. A kind is one lowercase string used everywhere: wire
tag, database value, registry key.

Each kind is one module here (``http``, ``tcp``, ``dns``, ``tls_cert``, ``domain_expiry``,
``heartbeat``, ``icmp``) holding its msgspec struct, its validation, its field-to-error-code map,
its interval floor and default and its secret fields, handed to the registry as one ``KindInfo``.
``registry`` gathers them (``KINDS``) and builds the wire union ``CheckSpec``; ``common`` and
``fields`` hold what several kinds share.

Adding a check kind takes three steps:

1. a module ``shared/checks/<kind>.py`` with the struct (``tag="<kind>"``), ``validate`` and its
   ``KIND = KindInfo(...)``;
2. a runner module ``probe_agent/checks/<kind>.py`` (none for a push kind, like heartbeat);
3. one registry line on each side: ``<kind>.KIND`` in ``KINDS`` (and its struct in the
   ``CheckSpec`` union beside it) in ``shared/checks/registry.py``, and the runner in
   ``probe_agent.checks.build_runners``.

``tests/probe_agent/test_check_registry.py`` fails when a registered kind lacks any of these.
"""

from __future__ import annotations

from shared.assertions import Assertion, AssertionOperator, AssertionType
from shared.checks.common import (
    ABSOLUTE_MIN_INTERVAL,
    MAX_INTERVAL,
    MAX_TIMEOUT_MS,
    REDACTED,
    KindInfo,
    check_kind,
)
from shared.checks.dns import DNS_RECORD_TYPES, DnsCheck, DnsMatch, DnsRecordType
from shared.checks.domain_expiry import DomainExpiryCheck
from shared.checks.heartbeat import HeartbeatCheck
from shared.checks.http import (
    ALWAYS_SECRET_HEADERS,
    SECRET_HEADER_PREFIX,
    ExactStatus,
    ExpectedStatus,
    HttpCheck,
    HttpMethod,
    OneOfStatus,
    RangeStatus,
    StatusRange,
    is_secret_header,
    secret_header_names,
    status_matches,
)
from shared.checks.icmp import IcmpCheck
from shared.checks.registry import (
    KIND_DEFAULT_INTERVAL,
    KIND_MIN_INTERVAL,
    KINDS,
    PUSH_KINDS,
    SECRET_FIELDS,
    CheckSpec,
    all_field_codes,
    field_codes,
)
from shared.checks.tcp import TcpCheck
from shared.checks.tls_cert import TlsCertCheck

__all__ = [
    "ABSOLUTE_MIN_INTERVAL",
    "ALWAYS_SECRET_HEADERS",
    "DNS_RECORD_TYPES",
    "KINDS",
    "KIND_DEFAULT_INTERVAL",
    "KIND_MIN_INTERVAL",
    "MAX_INTERVAL",
    "MAX_TIMEOUT_MS",
    "PUSH_KINDS",
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_HEADER_PREFIX",
    "Assertion",
    "AssertionOperator",
    "AssertionType",
    "CheckSpec",
    "DnsCheck",
    "DnsMatch",
    "DnsRecordType",
    "DomainExpiryCheck",
    "ExactStatus",
    "ExpectedStatus",
    "HeartbeatCheck",
    "HttpCheck",
    "HttpMethod",
    "IcmpCheck",
    "KindInfo",
    "OneOfStatus",
    "RangeStatus",
    "StatusRange",
    "TcpCheck",
    "TlsCertCheck",
    "all_field_codes",
    "check_kind",
    "field_codes",
    "is_secret_header",
    "secret_header_names",
    "status_matches",
]
