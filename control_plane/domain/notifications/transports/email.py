"""Email: one lowercase address per channel, through the deployment's SMTP path
(``core/mail.py``). Verification-gated: the service refuses to deliver to an unverified address
(``CHANNEL_UNVERIFIED``); this module only validates and sends."""

from __future__ import annotations

import re

from control_plane.core.mail import send_mail

from .base import Alert, Config, Context, TransportInfo, invalid, text, title

_ADDRESS = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


class EmailConfig(Config, tag="email"):
    to: str


def validate(cfg: EmailConfig, ctx: Context) -> None:
    if len(cfg.to) > 254 or not _ADDRESS.match(cfg.to):
        raise invalid("to", "to must be one lowercase email address")


async def send(cfg: EmailConfig, alert: Alert, ctx: Context) -> int:
    from control_plane.settings import MailSettings

    return await send_mail(
        ctx.mail or MailSettings(), to=cfg.to, subject=f"[Vigil] {title(alert)}", text=text(alert)
    )


KIND = TransportInfo("email", EmailConfig, validate, send=send)
