"""What every check kind shares: the limits of a spec, the redaction sentinel, how a kind is
named, and ``KindInfo``, the record each kind module hands the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

# What a secret reads as on every read; a write that still holds it is refused.
REDACTED = "***"

# Interval bounds of every kind, in seconds (each kind has its own floor, at least this one).
ABSOLUTE_MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 86400
# A check's ``timeout`` (milliseconds), whatever its kind.
MAX_TIMEOUT_MS = 60_000

SpecT = TypeVar("SpecT", bound=msgspec.Struct)

MAX_PORT = 65535


def stated(minimum: int, maximum: int) -> msgspec.Meta:
    """A numeric field's bounds as the control plane's OpenAPI document states them
    (``Annotated[int, stated(1, 10)]``). Only stated: the kind's ``validate`` enforces them and
    answers with the kind's own code and message."""
    return msgspec.Meta(extra_json_schema={"extra": {"minimum": minimum, "maximum": maximum}})


def check_kind(spec: msgspec.Struct) -> str:
    """The kind of a spec: its wire tag (``"http"``), also its registry key and database value."""
    kind = type(spec).__struct_config__.tag
    assert isinstance(kind, str)
    return kind


@dataclass(frozen=True, slots=True)
class KindInfo(Generic[SpecT]):
    """One check kind as both sides see it, declared once in the kind's module.

    ``field_codes`` maps a JSON pointer *relative to the spec* (``/url``) to the error code a
    wrong type or value there answers with; the control plane prefixes where the spec sits in its
    bodies (``/check``). ``secret_fields`` are sealed at rest and redacted on every read. A
    ``push`` kind is reported to the control plane by the monitored job itself: no agent runs
    it, so it has no runner.
    """

    struct: type[SpecT]
    # Raises ``shared.checks.fields.SpecError`` on the first problem of a decoded spec.
    validate: Callable[[SpecT], None]
    field_codes: Mapping[str, str]
    # Interval floor and default, in seconds.
    min_interval: int
    default_interval: int
    secret_fields: tuple[str, ...]
    push: bool = False

    @property
    def kind(self) -> str:
        tag = self.struct.__struct_config__.tag
        assert isinstance(tag, str)
        return tag
