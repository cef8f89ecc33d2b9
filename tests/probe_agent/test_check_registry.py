"""Every check kind is whole on both sides; a probe that cannot run a check answers ``error``,
never nothing.

A kind is one module in ``shared/checks/``, one runner module in ``probe_agent/checks/`` and one
registry line on each side: the first tests here fail when a registered kind lacks any part.
"""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from probe_agent.checks import RUNNERS, build_runners, close_runners, run_lease
from probe_agent.leases import decode_lease_response
from shared.checks import (
    ABSOLUTE_MIN_INTERVAL,
    KIND_DEFAULT_INTERVAL,
    KIND_MIN_INTERVAL,
    KINDS,
    MAX_INTERVAL,
    PUSH_KINDS,
    SECRET_FIELDS,
    CheckSpec,
    HttpCheck,
    KindInfo,
    TcpCheck,
    all_field_codes,
    field_codes,
)
from shared.protocol import CheckResult, Lease
from tests.probe_agent.helpers import closed_port, make_lease

UNION = typing.get_args(CheckSpec)


def test_every_wire_kind_has_a_runner() -> None:
    kinds = {member.__struct_config__.tag for member in UNION}
    assert kinds, "CheckSpec is not a union of tagged structs any more"
    probed = kinds - PUSH_KINDS  # pushed to the control plane, never leased to an agent
    assert probed <= set(RUNNERS), f"no runner for {probed - set(RUNNERS)}"


def test_every_struct_of_the_wire_union_is_registered() -> None:
    registered = [info.struct for info in KINDS.values()]
    assert sorted(UNION, key=str) == sorted(registered, key=str)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_registered_kind_has_every_part(kind: str) -> None:
    info: KindInfo[Any] = KINDS[kind]
    fields = set(info.struct.__struct_fields__)
    # Its struct: in the wire union, tagged with the kind, declared in the kind's own module.
    assert info.kind == kind
    assert info.struct in UNION
    assert info.struct.__module__ == f"shared.checks.{kind}"
    # Its validator, beside it.
    assert callable(info.validate)
    assert info.validate.__module__ == info.struct.__module__
    # Its field codes: pointers (relative to the spec) to fields it has, with a code each.
    assert info.field_codes, f"{kind} has no field-to-error-code map"
    for pointer, code in info.field_codes.items():
        assert pointer.startswith("/") and pointer[1:] in fields, pointer
        assert code and code.isupper(), code
    assert field_codes(kind) == dict(info.field_codes)
    # Its interval floor and default.
    assert ABSOLUTE_MIN_INTERVAL <= info.min_interval <= info.default_interval <= MAX_INTERVAL
    # Its secret fields: a tuple (empty when it has none) of fields it has.
    assert isinstance(info.secret_fields, tuple)
    assert set(info.secret_fields) <= fields
    # And, unless the monitored job pushes it to the control plane, a runner.
    runners = build_runners()
    if info.push:
        assert kind not in runners, f"{kind} is a push kind: no agent may run it"
    else:
        assert kind in runners, f"no runner for {kind} in probe_agent.checks.build_runners"
        assert getattr(runners[kind], "kind", kind) == kind


def test_the_tables_the_control_plane_reads_follow_the_registry() -> None:
    assert SECRET_FIELDS == {kind: info.secret_fields for kind, info in KINDS.items()}
    assert KIND_MIN_INTERVAL == {kind: info.min_interval for kind, info in KINDS.items()}
    assert KIND_DEFAULT_INTERVAL == {kind: info.default_interval for kind, info in KINDS.items()}
    assert {kind for kind, info in KINDS.items() if info.push} == PUSH_KINDS


def test_all_field_codes_is_every_kinds_codes_in_one_map() -> None:
    merged = all_field_codes()  # raises when two kinds give one pointer different codes
    for kind in KINDS:
        assert field_codes(kind).items() <= merged.items()
    assert set(merged) == {pointer for kind in KINDS for pointer in field_codes(kind)}


async def test_a_kind_without_runner_is_a_probe_error() -> None:
    lease = make_lease(TcpCheck(host="127.0.0.1", port=closed_port()))
    result = await run_lease(lease, runners={"http": RUNNERS["http"]})
    assert result.status == "error"
    assert result.error_code == "PROBE_ERROR"
    assert result.error == "this agent cannot run 'tcp' checks"
    assert result.lease_id == lease.lease_id


class _Broken:
    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        raise KeyError("bug")


async def test_a_crashing_runner_is_a_probe_error() -> None:
    lease = make_lease(TcpCheck(host="127.0.0.1", port=1))
    result = await run_lease(lease, runners={"tcp": _Broken()})
    assert result.status == "error"
    assert result.error_code == "PROBE_ERROR"
    assert result.error == "internal error in the tcp runner: KeyError"
    assert result.latency_ms is None


async def test_registered_runner_is_used() -> None:
    port = closed_port()
    result = await run_lease(make_lease(HttpCheck(url=f"http://127.0.0.1:{port}/")))
    assert result.status == "down"
    assert result.error_code == "CONNECTION_REFUSED"


def test_a_lease_of_an_unknown_kind_does_not_spoil_the_batch() -> None:
    good = make_lease(TcpCheck(host="db.example", port=5432))
    unknown = {
        "lease_id": "lease-x",
        "target_id": str(uuid.uuid4()),
        "region": "r",
        "scheduled_at": "2030-01-01T00:00:00Z",
        "expires_at": "2030-01-01T00:01:00Z",
        "interval_secs": 60,
        "check": {"type": "carrier_pigeon", "loft": "north"},
    }
    payload = msgspec.json.encode(
        {
            "leases": [msgspec.to_builtins(good), unknown],
            "server_time": datetime.now(UTC).isoformat(),
        }
    )
    batch = decode_lease_response(payload)
    assert [lease.lease_id for lease in batch.leases] == [good.lease_id]
    assert batch.leases[0].check == good.check
    (bad,) = batch.unreadable
    assert bad.lease_id == "lease-x" and bad.kind == "carrier_pigeon"
    assert bad.scheduled_at == datetime(2030, 1, 1, tzinfo=UTC)


class _Closable:
    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async
        self.closed = False

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        raise AssertionError("not run here")

    def close(self) -> object:
        if not self.is_async:
            self.closed = True
            return None

        async def closing() -> None:
            self.closed = True

        return closing()


async def test_close_runners_closes_each_runner_that_can_be_closed() -> None:
    async_one, sync_one = _Closable(is_async=True), _Closable(is_async=False)
    await close_runners({"a": async_one, "b": sync_one, "c": _Broken()})
    assert async_one.closed and sync_one.closed
