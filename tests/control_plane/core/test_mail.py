"""core/mail.py against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from control_plane.core.mail import MailError, MailUnavailable, send_mail
from control_plane.settings import MailSettings, SettingsError, settings_from_env


class _Inbox:
    def __init__(self, refuse: str | None = None) -> None:
        self.messages: list[Any] = []
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, _: Any
    ) -> str:
        if self.refuse and address == self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, MailSettings]]:
    inbox = _Inbox(refuse="nobody@example.com")
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            inbox,
            MailSettings(
                host="127.0.0.1", port=port, security="none", sender="Vigil <alerts@vigil.test>"
            ),
        )
    finally:
        controller.stop()


async def test_a_message_arrives_with_its_headers(smtp: tuple[_Inbox, MailSettings]) -> None:
    inbox, settings = smtp
    code = await send_mail(settings, to="ops@example.com", subject="Down: api", text="It is down.")
    assert code == 250
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["ops@example.com"]
    msg = message_from_bytes(envelope.content)
    assert msg["Subject"] == "Down: api"
    assert msg["From"] == "Vigil <alerts@vigil.test>"
    assert "It is down." in msg.get_payload(decode=False)


async def test_a_refused_recipient_is_a_permanent_error(
    smtp: tuple[_Inbox, MailSettings],
) -> None:
    _, settings = smtp
    with pytest.raises(MailError) as info:
        await send_mail(settings, to="nobody@example.com", subject="x", text="x")
    assert info.value.code == 550
    assert info.value.permanent


async def test_no_server_configured_is_unavailable() -> None:
    with pytest.raises(MailUnavailable):
        await send_mail(MailSettings(), to="a@example.com", subject="x", text="x")


async def test_a_closed_port_is_a_transient_error() -> None:
    settings = MailSettings(host="127.0.0.1", port=_free_port(), security="none", timeout_secs=2)
    with pytest.raises(MailError) as info:
        await send_mail(settings, to="a@example.com", subject="x", text="x")
    assert not info.value.permanent


def test_security_mode_is_checked() -> None:
    base = {
        "VIGIL_DATABASE_URL": "postgresql://x",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    assert settings_from_env({**base, "VIGIL_SMTP_SECURITY": "tls"}).mail.port == 465
    with pytest.raises(SettingsError, match="VIGIL_SMTP_SECURITY"):
        settings_from_env({**base, "VIGIL_SMTP_SECURITY": "ssl3"})
