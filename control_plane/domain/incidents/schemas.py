"""What incident reads return, and the bodies of the lifecycle and narration writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

# Where people are with an incident: open → acknowledged → resolved.
State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["critical", "major", "minor"]
Phase = Literal["investigating", "identified", "monitoring", "resolved", "postmortem"]
Note = Annotated[str, msgspec.Meta(max_length=2000)]
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
PublicTitle = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PublicDescription = Annotated[str, msgspec.Meta(max_length=5000)]

STATES: tuple[str, ...] = get_args(State)
SEVERITIES: tuple[str, ...] = get_args(Severity)
PHASES: tuple[str, ...] = get_args(Phase)


class IncidentUpdate(msgspec.Struct, kw_only=True):
    """One entry of an incident's public timeline."""

    id: uuid.UUID
    phase: str
    message: str
    created_at: datetime
    # Who wrote it: ``api_key:<token id>``.
    created_by: str | None


class Incident(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    target_id: uuid.UUID
    started_at: datetime
    # When the outage ended, as the engine saw it: null while the target is still failing (even
    # after a manual resolve; then duration_secs is null too).
    ended_at: datetime | None
    # What the engine saw: ``down`` or ``degraded``.
    status: str
    duration_secs: int | None
    # Bad results seen while it was open.
    check_count: int
    # One failure message from a region that saw it.
    error_sample: str | None
    # The regions that saw the target failing.
    regions: list[str]
    # Where people are with it: ``open`` → ``acknowledged`` → ``resolved``.
    state: str = "open"
    # Set by PATCH, else derived from ``status`` (down: critical, degraded: minor).
    severity: str = "critical"
    severity_set: bool = False
    public_title: str | None = None
    public_description: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledge_note: str | None = None
    resolved_at: datetime | None = None
    # Who resolved it by hand (``api_key:<token id>``); null when the engine saw it recover.
    resolved_by: str | None = None
    resolve_note: str | None = None
    # Opened while a maintenance window covered the target, and that window (or another covering
    # it) is still active: its notifications are held.
    in_maintenance: bool = False


class IncidentDetail(Incident, kw_only=True):
    # The public timeline, oldest first.
    updates: list[IncidentUpdate] = msgspec.field(default_factory=list)


class LifecycleNote(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The optional body of acknowledge and resolve."""

    __field_codes__: ClassVar[dict[str, str]] = {"/note": "INVALID_NOTE"}

    note: Note | None = None


class IncidentPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Narration: an omitted field is left alone, JSON null clears it."""

    __field_codes__: ClassVar[dict[str, str]] = {
        "/public_title": "INVALID_PUBLIC_TITLE",
        "/public_description": "INVALID_PUBLIC_DESCRIPTION",
        "/severity": "INVALID_SEVERITY",
    }
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = {"/severity": SEVERITIES}

    public_title: PublicTitle | UnsetType | None = UNSET
    public_description: PublicDescription | UnsetType | None = UNSET
    severity: Severity | UnsetType | None = UNSET


class IncidentUpdateCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = {
        "/phase": "INVALID_PHASE",
        "/message": "INVALID_MESSAGE",
    }
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = {"/phase": PHASES}

    phase: Phase
    message: Message
