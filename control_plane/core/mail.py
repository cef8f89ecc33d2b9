"""The one SMTP path: email channels, invitations and password resets all send through it.

``send_mail`` builds a plain-text (optionally HTML alternative) message and sends it with
aiosmtplib under the deployment's ``MailSettings``. Failures are ``MailError`` with the SMTP code
when the server gave one, so callers can tell a permanent refusal (5xx) from a transient one;
credentials never appear in an error's text.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from control_plane.settings import MailSettings


class MailError(Exception):
    """Sending failed. ``code`` is the SMTP reply code when the server answered with one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def permanent(self) -> bool:
        """A 5xx reply: retrying the same message will not help."""
        return self.code is not None and 500 <= self.code < 600


class MailUnavailable(MailError):
    """No SMTP server is configured (``VIGIL_SMTP_HOST`` unset)."""


def build_message(
    settings: MailSettings, *, to: str, subject: str, text: str, html: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="vigil")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


async def send_mail(
    settings: MailSettings, *, to: str, subject: str, text: str, html: str | None = None
) -> int:
    """Send one message; returns the SMTP reply code of the accepted DATA command."""
    if not settings.host:
        raise MailUnavailable("no SMTP server is configured (VIGIL_SMTP_HOST)")
    msg = build_message(settings, to=to, subject=subject, text=text, html=html)
    try:
        errors, reply = await aiosmtplib.send(
            msg,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.security == "tls",
            start_tls=True if settings.security == "starttls" else False,
            timeout=settings.timeout_secs,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        raise MailError(
            f"SMTP {first.code}: recipient refused: {first.message[:200]}", code=first.code
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP {exc.code}: {exc.message[:200]}", code=exc.code) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailError(f"SMTP failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    if errors:
        code, message = next(iter(errors.values()))
        raise MailError(f"SMTP {code}: recipient refused: {message[:200]}", code=code)
    code = int(reply.split(" ", 1)[0]) if reply[:3].isdigit() else 250
    return code
