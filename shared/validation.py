"""Semantic validation of check specs, shared by the control plane (on write) and the agent.

``validate_check`` is the one entry point: it refuses credentials that still hold the redaction
sentinel, then runs the validation of the spec's kind, found through the registry. The rules
themselves live with each kind (``shared.checks.<kind>``) and, for the fields several kinds
share, in ``shared.checks.fields``. Errors carry the primary reference's stable codes and a JSON
pointer relative to the spec.
"""

from __future__ import annotations

from shared.checks import KINDS, CheckSpec, check_kind
from shared.checks.fields import (
    SpecError,
    find_redaction_sentinel,
    is_dns_name,
    is_valid_hostname,
    reject_redaction_sentinel,
)

__all__ = [
    "SpecError",
    "find_redaction_sentinel",
    "is_dns_name",
    "is_valid_hostname",
    "validate_check",
]


def validate_check(spec: CheckSpec) -> None:
    """Raise ``SpecError`` on the first problem; pointers are relative to the spec."""
    info = KINDS[check_kind(spec)]
    reject_redaction_sentinel({name: getattr(spec, name) for name in info.secret_fields})
    info.validate(spec)
