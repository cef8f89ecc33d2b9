"""WhatsApp Business Cloud API: a one-parameter template message (free-form text outside the
24 h window is accepted and silently dropped, so a template is required)."""

from __future__ import annotations

import re

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

API = "https://graph.facebook.com/v19.0"


class WhatsAppConfig(Config, tag="whatsapp"):
    access_token: str
    phone_number_id: str
    to: str
    template_name: str
    language_code: str = "en"


def validate(cfg: WhatsAppConfig, ctx: Context) -> None:
    require(cfg.access_token, "access_token")
    if not cfg.phone_number_id.isdigit() or len(cfg.phone_number_id) > 30:
        raise invalid("phone_number_id", "phone_number_id must be numeric")
    if not E164.match(cfg.to):
        raise invalid("to", "to must be an international (E.164) number such as +15551234567")
    if not re.match(r"^[a-z0-9_]{1,512}$", cfg.template_name):
        raise invalid("template_name", "template_name is lowercase letters, digits and _")
    if not re.match(r"^[a-z]{2,3}(_[A-Z]{2})?$", cfg.language_code):
        raise invalid("language_code", "language_code is like en or en_US")


def build(cfg: WhatsAppConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("whatsapp", f"{API}/{cfg.phone_number_id}/messages", ctx.settings)
    line = cap(" ".join(text(alert).split()), 1000)
    payload = {
        "messaging_product": "whatsapp",
        "to": cfg.to.lstrip("+"),
        "type": "template",
        "template": {
            "name": cfg.template_name,
            "language": {"code": cfg.language_code},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": line}]}],
        },
    }
    return [json_request(url, payload, {"Authorization": f"Bearer {cfg.access_token}"})]


KIND = TransportInfo("whatsapp", WhatsAppConfig, validate, build, secrets=("access_token",))
