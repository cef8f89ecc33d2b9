"""One runner per wire kind; a probe that cannot run a check answers ``error``, never nothing."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime

import msgspec

from probe_agent.checks import RUNNERS, close_runners, run_lease
from probe_agent.leases import decode_lease_response
from shared.checks import PUSH_KINDS, CheckSpec, HttpCheck, TcpCheck
from shared.protocol import CheckResult, Lease
from tests.probe_agent.helpers import closed_port, make_lease


def test_every_wire_kind_has_a_runner() -> None:
    kinds = {member.__struct_config__.tag for member in typing.get_args(CheckSpec)}
    assert kinds, "CheckSpec is not a union of tagged structs any more"
    probed = kinds - PUSH_KINDS  # pushed to the control plane, never leased to an agent
    assert probed <= set(RUNNERS), f"no runner for {probed - set(RUNNERS)}"


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
