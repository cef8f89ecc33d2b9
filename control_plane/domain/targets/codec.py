"""Check specs to and from their stored form: secret fields sealed apart, redacted on reads.

A secret header value (``shared.checks.secret_header_names``) is sealed under the field
``headers.<lowercased name>``; the stored public spec keeps the header's name, spelled as given,
with the redaction sentinel as its value, so reads need no key and keep the header's place.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from control_plane.security.sealing import Sealer, SecretUnavailable
from shared.checks import (
    ALWAYS_SECRET_HEADERS,
    REDACTED,
    SECRET_FIELDS,
    SECRET_HEADER_PREFIX,
    CheckSpec,
    HttpCheck,
    check_kind,
    secret_header_names,
)

_JSON = msgspec.json.Encoder()


def header_field(name: str) -> str:
    """The sealed-value field of header ``name``."""
    return SECRET_HEADER_PREFIX + name.lower()


def _seal(sealer: Sealer, org_id: uuid.UUID, target_id: uuid.UUID, field: str, value: Any) -> str:
    return sealer.seal(_JSON.encode(value).decode(), Sealer.binding(org_id, target_id, field))


def _seal_headers(
    sealer: Sealer,
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    headers: dict[str, str],
    secret: frozenset[str],
    sealed: dict[str, str],
) -> int:
    """Seal every secret header value of ``headers`` still in the clear into ``sealed`` and put
    the sentinel in its place; returns how many were sealed."""
    count = 0
    for name, value in headers.items():
        if name.lower() in secret and value != REDACTED:
            sealed[header_field(name)] = _seal(sealer, org_id, target_id, header_field(name), value)
            headers[name] = REDACTED
            count += 1
    return count


def seal_check(
    sealer: Sealer, org_id: uuid.UUID, target_id: uuid.UUID, spec: CheckSpec
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a validated spec into (public spec, {field: sealed value})."""
    public: dict[str, Any] = msgspec.to_builtins(spec)
    sealed: dict[str, str] = {}
    for name in SECRET_FIELDS.get(check_kind(spec), ()):
        value = public.pop(name, None)
        if value is not None:
            sealed[name] = _seal(sealer, org_id, target_id, name, value)
    if isinstance(spec, HttpCheck):
        _seal_headers(
            sealer, org_id, target_id, public["headers"], secret_header_names(spec), sealed
        )
    return public, sealed


def seal_plain_headers(
    sealer: Sealer,
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    public: dict[str, Any],
    sealed: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str], int] | None:
    """A stored http spec written before its header values were secret keeps them in the clear:
    the (public spec, sealed values, count) with them sealed, or None when none is left."""
    headers: dict[str, str] = dict(public.get("headers") or {})
    listed = public.get("secret_headers") or []
    secret = ALWAYS_SECRET_HEADERS | {str(name).lower() for name in listed}
    new_sealed = dict(sealed)
    count = _seal_headers(sealer, org_id, target_id, headers, secret, new_sealed)
    if not count:
        return None
    return {**public, "headers": headers}, new_sealed, count


def redact_headers(spec: CheckSpec) -> None:
    # Also covers a secret header stored in the clear (a row written before the header was
    # secret): reads never show one.
    if isinstance(spec, HttpCheck) and spec.headers:
        secret = secret_header_names(spec)
        spec.headers = {
            name: REDACTED if name.lower() in secret else value
            for name, value in spec.headers.items()
        }


def _redacted_view(public: dict[str, Any], sealed: dict[str, str]) -> dict[str, Any]:
    view = dict(public)
    for name in sealed:
        if not name.startswith(SECRET_HEADER_PREFIX):
            view[name] = REDACTED
    return view


def redacted_check(public: dict[str, Any], sealed: dict[str, str]) -> CheckSpec:
    """The spec as every read shows it: populated secrets become ``"***"``, null stays null."""
    spec: CheckSpec = msgspec.convert(_redacted_view(public, sealed), CheckSpec)
    redact_headers(spec)
    return spec


def redacted_checks(pairs: list[tuple[dict[str, Any], dict[str, str]]]) -> list[CheckSpec]:
    """``redacted_check`` of many specs: one conversion of the whole list (a conversion per
    spec spends most of its time choosing the union's type, 40 us each)."""
    specs = msgspec.convert([_redacted_view(p, s) for p, s in pairs], list[CheckSpec])
    for spec in specs:
        redact_headers(spec)
    return specs


_SPEC = msgspec.json.Decoder(CheckSpec)


def open_check(
    sealer: Sealer,
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    public: dict[str, Any] | str,
    sealed: dict[str, str] | None,
) -> CheckSpec:
    """The full spec with secrets decrypted (agent dispatch). Raises ``SecretUnavailable``, also
    when a secret header has no sealed value to fill in: never a spec carrying the sentinel.

    ``public`` may be the stored spec's JSON text (the lease reads it so): a spec without
    secrets, the common case, is then decoded straight into its struct in C, instead of parsed
    into a dict by psycopg (stdlib ``json``) and converted (together 16% of the API's CPU in the
    ingest bench, where every result is leased first)."""
    if isinstance(public, str):
        if not sealed:
            return _checked(_SPEC.decode(public))
        view: dict[str, Any] = msgspec.json.decode(public)
    else:
        view = dict(public)
    headers: dict[str, Any] = dict(view.get("headers") or {})
    by_field = {header_field(name): name for name in headers}
    for field, value in (sealed or {}).items():
        plain = msgspec.json.decode(sealer.open(value, Sealer.binding(org_id, target_id, field)))
        if field.startswith(SECRET_HEADER_PREFIX):
            if field in by_field:
                headers[by_field[field]] = plain
        else:
            view[field] = plain
    if headers:
        view["headers"] = headers
    return _checked(msgspec.convert(view, CheckSpec))


def _checked(spec: CheckSpec) -> CheckSpec:
    """``spec``, unless a secret header of it still holds the redaction sentinel."""
    if isinstance(spec, HttpCheck) and spec.headers:
        secret = secret_header_names(spec)
        for name, value in spec.headers.items():
            if value == REDACTED and name.lower() in secret:
                raise SecretUnavailable(f"header {name!r} has no sealed value")
    return spec
