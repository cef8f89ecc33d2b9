"""WhatsApp Business Cloud API: a one-parameter template message (free-form text outside the
24 h window is accepted and silently dropped, so a template is required).

``whatsapp`` is the tenant's own Business account; ``whatsapp_app`` a number linked to the
platform's WhatsApp number by the link-code flow (``whatsapp_link.py``): the same request with
the operator's number, token and template, never a tenant's."""

from __future__ import annotations

import re

from control_plane.settings import NotifySettings

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


def _template(
    url: str, token: str, to: str, template: str, language: str, alert: Alert
) -> list[HttpRequest]:
    line = cap(" ".join(text(alert).split()), 1000)
    payload = {
        "messaging_product": "whatsapp",
        "to": to.lstrip("+"),
        "type": "template",
        "template": {
            "name": template,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": line}]}],
        },
    }
    return [json_request(url, payload, {"Authorization": f"Bearer {token}"})]


def build(cfg: WhatsAppConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("whatsapp", f"{API}/{cfg.phone_number_id}/messages", ctx.settings)
    return _template(url, cfg.access_token, cfg.to, cfg.template_name, cfg.language_code, alert)


KIND = TransportInfo("whatsapp", WhatsAppConfig, validate, build, secrets=("access_token",))


class WhatsAppAppConfig(Config, tag="whatsapp_app"):
    """Managed: created only by the WhatsApp link-code flow (a body carrying it is 422)."""

    phone: str
    profile_name: str = ""


def validate_app(cfg: WhatsAppAppConfig, ctx: Context) -> None:
    require(cfg.phone, "phone")


def messages_url(settings: NotifySettings) -> str:
    """The platform number's send endpoint (``base_urls["whatsapp"]`` may rebase it)."""
    return rebase("whatsapp", f"{API}/{settings.whatsapp_phone_number_id}/messages", settings)


def build_app(cfg: WhatsAppAppConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    s = ctx.settings
    if not s.whatsapp_link_enabled or s.whatsapp_access_token is None:
        raise ValueError("this deployment has no platform WhatsApp number")
    return _template(
        messages_url(s),
        s.whatsapp_access_token,
        cfg.phone,
        s.whatsapp_template,
        s.whatsapp_language,
        alert,
    )


APP_KIND = TransportInfo("whatsapp_app", WhatsAppAppConfig, validate_app, build_app)
