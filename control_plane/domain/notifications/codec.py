"""Channel configs to and from their stored form, like target credentials
(``domain/targets/codec.py``): every secret field is sealed apart (AES-GCM, AAD bound to
org/channel/field), the stored public config holds ``"***"`` in its place, reads show ``"***"``.
A webhook's header values are secret fields too (``headers.<lowercased name>``); their names stay.

A config whose secret field is still ``"***"`` is refused (``REDACTION_SENTINEL``), on create
and on PATCH alike: omit ``config`` on PATCH to keep the stored secrets.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from control_plane.core.errors import ApiError
from control_plane.security.sealing import Sealer

from .transports.base import REDACTED, Config
from .transports.registry import DELIVERABLE, StoredConfig, kind_of

HEADER_PREFIX = "headers."


def _fields(cfg: Config) -> list[tuple[str, str | None]]:
    """(sealed field, value) of every secret of ``cfg``."""
    info = DELIVERABLE[kind_of(cfg)]
    out: list[tuple[str, str | None]] = [(n, getattr(cfg, n)) for n in info.secrets_of(cfg)]
    headers = getattr(cfg, "headers", None)
    if isinstance(headers, dict):
        out += [(HEADER_PREFIX + k.lower(), v) for k, v in headers.items()]
    return out


def sentinel_fields(cfg: Config) -> list[str]:
    return [name for name, value in _fields(cfg) if value == REDACTED]


def refuse_sentinel(cfg: Config) -> None:
    names = sentinel_fields(cfg)
    if names:
        raise ApiError(
            400,
            "REDACTION_SENTINEL",
            f"config.{names[0]} contains the redaction sentinel: re-supply the real value "
            "(or omit config on PATCH to keep the stored one)",
            "/config/" + names[0].replace(".", "/"),
        )


def seal(
    sealer: Sealer, org_id: uuid.UUID, channel_id: uuid.UUID, cfg: Config
) -> tuple[dict[str, Any], dict[str, str]]:
    """(public config with "***" for secrets, {field: sealed value})."""
    public: dict[str, Any] = msgspec.to_builtins(cfg)
    sealed: dict[str, str] = {}
    for name, value in _fields(cfg):
        if value is None:
            continue
        sealed[name] = sealer.seal(value, Sealer.binding(org_id, channel_id, name))
        if name.startswith(HEADER_PREFIX):
            for k in public["headers"]:
                if HEADER_PREFIX + k.lower() == name:
                    public["headers"][k] = REDACTED
        else:
            public[name] = REDACTED
    return public, sealed


def redacted(public: dict[str, Any]) -> dict[str, Any]:
    """The config as reads show it (the stored public form already holds the sentinels)."""
    return dict(public)


def open_config(
    sealer: Sealer,
    org_id: uuid.UUID,
    channel_id: uuid.UUID,
    public: dict[str, Any],
    sealed: dict[str, str],
) -> Config:
    """The full config, secrets decrypted (delivery). Raises ``SecretUnavailable``."""
    view = dict(public)
    headers = dict(view.get("headers") or {})
    for name, value in sealed.items():
        plain = sealer.open(value, Sealer.binding(org_id, channel_id, name))
        if name.startswith(HEADER_PREFIX):
            for k in headers:
                if HEADER_PREFIX + k.lower() == name:
                    headers[k] = plain
        else:
            view[name] = plain
    if headers:
        view["headers"] = headers
    cfg: Config = msgspec.convert(view, StoredConfig)
    return cfg
