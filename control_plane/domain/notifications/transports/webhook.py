"""The generic webhook: POSTs the alert JSON (the ``monitor.down`` / ``monitor.up`` event), with
optional custom headers and, with a secret of at least 16 characters, an HMAC-SHA256 signature
over ``"{timestamp}.{body}"`` (``X-Vigil-Timestamp``, ``X-Vigil-Signature: sha256=<hex>``).

No host restrictions: the escape hatch for what the branded kinds do not cover. Header values
are secrets (sealed, read back as ``***``); their names stay visible.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime

from .base import (
    JSON,
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    event_json,
    https_url,
    invalid,
    rebase,
)

MIN_SECRET = 16
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
RESERVED = frozenset(
    {"host", "content-length", "content-type", "x-vigil-timestamp", "x-vigil-signature"}
)


class WebhookConfig(Config, tag="webhook"):
    url: str
    headers: dict[str, str] = {}
    secret: str | None = None


def validate(cfg: WebhookConfig, ctx: Context) -> None:
    https_url(cfg.url, "url", ctx, allow_http=True)
    if len(cfg.headers) > 20:
        raise invalid("headers", "at most 20 headers")
    for name, value in cfg.headers.items():
        if not _TOKEN.match(name) or name.lower() in RESERVED:
            raise invalid(f"headers/{name}", f"header name {name!r} is not allowed")
        if len(value) > 2000 or any(c in value for c in "\r\n\x00"):
            raise invalid(f"headers/{name}", "header values are at most 2000 characters, one line")
    if cfg.secret is not None and len(cfg.secret) < MIN_SECRET:
        raise invalid("secret", f"secret must be at least {MIN_SECRET} characters")
    if cfg.secret is not None and len(cfg.secret) > 500:
        raise invalid("secret", "secret must be at most 500 characters")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build(cfg: WebhookConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    now = ctx.now or datetime.now(UTC)
    body = JSON.encode(event_json(alert, now))
    headers = {**cfg.headers, "Content-Type": "application/json", "User-Agent": "Vigil-Webhook/1"}
    if cfg.secret:
        ts = int(now.timestamp())
        headers["X-Vigil-Timestamp"] = str(ts)
        headers["X-Vigil-Signature"] = sign(cfg.secret, ts, body)
    return [HttpRequest(url=rebase("webhook", cfg.url, ctx.settings), body=body, headers=headers)]


KIND = TransportInfo(
    "webhook", WebhookConfig, validate, build, secrets=("url", "secret"), url_field="url"
)
