"""Check specs to and from their stored form: secret fields sealed apart, redacted on reads."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from control_plane.security.sealing import Sealer
from shared.checks import REDACTED, SECRET_FIELDS, CheckSpec, check_kind

_JSON = msgspec.json.Encoder()


def seal_check(
    sealer: Sealer, org_id: uuid.UUID, target_id: uuid.UUID, spec: CheckSpec
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a validated spec into (public spec, {field: sealed value})."""
    public: dict[str, Any] = msgspec.to_builtins(spec)
    sealed: dict[str, str] = {}
    for name in SECRET_FIELDS.get(check_kind(spec), ()):
        value = public.pop(name, None)
        if value is not None:
            aad = Sealer.binding(org_id, target_id, name)
            sealed[name] = sealer.seal(_JSON.encode(value).decode(), aad)
    return public, sealed


def redacted_check(public: dict[str, Any], sealed: dict[str, str]) -> CheckSpec:
    """The spec as every read shows it: populated secrets become ``"***"``, null stays null."""
    view = dict(public)
    for name in sealed:
        view[name] = REDACTED
    spec: CheckSpec = msgspec.convert(view, CheckSpec)
    return spec


def open_check(
    sealer: Sealer,
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    public: dict[str, Any],
    sealed: dict[str, str],
) -> CheckSpec:
    """The full spec with secrets decrypted (agent dispatch). Raises ``SecretUnavailable``."""
    view = dict(public)
    for name, value in sealed.items():
        view[name] = msgspec.json.decode(
            sealer.open(value, Sealer.binding(org_id, target_id, name))
        )
    spec: CheckSpec = msgspec.convert(view, CheckSpec)
    return spec
