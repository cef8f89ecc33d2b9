"""The result codes of ``shared.codes``: stable strings that tenants see and both sides compare."""

from __future__ import annotations

import shared.codes


def codes() -> dict[str, object]:
    return {name: value for name, value in vars(shared.codes).items() if name.isupper()}


def test_each_code_is_spelled_as_its_name() -> None:
    # A code is compared as a string by the control plane, by alerts and by tenants' scripts: a
    # constant whose value drifted from its name would silently split one code into two.
    assert codes()
    for name, value in codes().items():
        assert value == name


def test_the_codes_the_control_plane_writes_or_compares_are_defined() -> None:
    assert {"THROTTLED", "SSRF_BLOCKED", "SECRET_UNAVAILABLE", "MISSED", "HEARTBEAT_FAILED"} <= set(
        codes()
    )
