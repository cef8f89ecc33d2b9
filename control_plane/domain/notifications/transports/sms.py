"""SMS through the customer's own gateway: Twilio, Telnyx, Vonage, Plivo or Sinch. One text per
alert, trimmed to a few segments. Only the gateway secret is sealed (Twilio/Plivo
``auth_token``, Telnyx ``api_key``, Vonage ``api_secret``, Sinch ``api_token``); account
identifiers stay visible."""

from __future__ import annotations

import base64
import re
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from .base import (
    E164,
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    cap,
    invalid,
    json_request,
    rebase,
    require,
    text,
)

# Three GSM segments.
LIMIT = 459
SINCH_REGIONS = ("us", "eu", "au", "br", "ca")
_SENDER = re.compile(r"^(\+[1-9][0-9]{6,14}|[A-Za-z0-9 ]{1,11})$")


class SmsConfig(Config, tag="sms"):
    provider: Literal["twilio", "telnyx", "vonage", "plivo", "sinch"]
    to: str
    # ``from`` is a Python keyword: renamed on the wire.
    sender: str = msgspec.field(name="from", default="")
    account_sid: str | None = None
    auth_token: str | None = None
    api_key: str | None = None
    messaging_profile_id: str | None = None
    api_secret: str | None = None
    auth_id: str | None = None
    service_plan_id: str | None = None
    api_token: str | None = None
    region: str = "us"


SECRET_OF = {
    "twilio": "auth_token",
    "plivo": "auth_token",
    "telnyx": "api_key",
    "vonage": "api_secret",
    "sinch": "api_token",
}
NEEDS = {
    "twilio": ("account_sid", "auth_token"),
    "telnyx": ("api_key",),
    "vonage": ("api_key", "api_secret"),
    "plivo": ("auth_id", "auth_token"),
    "sinch": ("service_plan_id", "api_token"),
}


def validate(cfg: SmsConfig, ctx: Context) -> None:
    if not E164.match(cfg.to):
        raise invalid("to", "to must be an E.164 number such as +15551234567")
    require(cfg.sender, "from")
    if not _SENDER.match(cfg.sender):
        raise invalid("from", "from must be an E.164 number or an alphanumeric sender id")
    for name in NEEDS[cfg.provider]:
        value = getattr(cfg, name)
        if not value or not str(value).strip():
            raise invalid(name, f"{cfg.provider} needs {name}")
    if cfg.provider == "twilio" and not re.match(r"^AC[0-9a-f]{32}$", cfg.account_sid or ""):
        raise invalid("account_sid", "account_sid is AC followed by 32 hex digits")
    if cfg.provider == "plivo" and not (cfg.auth_id or "").isalnum():
        raise invalid("auth_id", "auth_id is alphanumeric")
    if cfg.provider == "sinch":
        if not (cfg.service_plan_id or "").isalnum():
            raise invalid("service_plan_id", "service_plan_id is alphanumeric")
        if cfg.region not in SINCH_REGIONS:
            raise invalid("region", f"region is one of {', '.join(SINCH_REGIONS)}")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def build(cfg: SmsConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    body = cap(text(alert), LIMIT)
    s = ctx.settings
    if cfg.provider == "twilio":
        sid = cfg.account_sid or ""
        url = rebase("sms", f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json", s)
        form = urlencode({"To": cfg.to, "From": cfg.sender, "Body": body}).encode()
        headers = {
            "Authorization": _basic(sid, cfg.auth_token or ""),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return [HttpRequest(url=url, body=form, headers=headers)]
    if cfg.provider == "telnyx":
        payload: dict[str, Any] = {"to": cfg.to, "from": cfg.sender, "text": body}
        if cfg.messaging_profile_id:
            payload["messaging_profile_id"] = cfg.messaging_profile_id
        url = rebase("sms", "https://api.telnyx.com/v2/messages", s)
        return [json_request(url, payload, {"Authorization": f"Bearer {cfg.api_key}"})]
    if cfg.provider == "vonage":
        url = rebase("sms", "https://rest.nexmo.com/sms/json", s)
        payload = {
            "api_key": cfg.api_key,
            "api_secret": cfg.api_secret,
            "to": cfg.to.lstrip("+"),
            "from": cfg.sender.lstrip("+"),
            "text": body,
        }
        return [json_request(url, payload)]
    if cfg.provider == "plivo":
        aid = cfg.auth_id or ""
        url = rebase("sms", f"https://api.plivo.com/v1/Account/{aid}/Message/", s)
        payload = {"src": cfg.sender, "dst": cfg.to, "text": body}
        return [json_request(url, payload, {"Authorization": _basic(aid, cfg.auth_token or "")})]
    plan = cfg.service_plan_id or ""
    url = rebase("sms", f"https://{cfg.region}.sms.api.sinch.com/xms/v1/{plan}/batches", s)
    payload = {"from": cfg.sender, "to": [cfg.to], "body": body}
    return [json_request(url, payload, {"Authorization": f"Bearer {cfg.api_token}"})]


def secret_fields(cfg: SmsConfig) -> tuple[str, ...]:
    return (SECRET_OF[cfg.provider],)


KIND = TransportInfo(
    "sms",
    SmsConfig,
    validate,
    build,
    secrets=tuple(sorted(set(SECRET_OF.values()))),
    secret_fields=secret_fields,
)
