"""Mail a request can cause is rate-limited: a password reset or an invitation sends a mail,
so neither may be used to spam an inbox or to flood the SMTP relay.

Two GCRA buckets per hour, spent together in the limiter's one Redis script
(``core/ratelimit.py``): the client address (``per_ip_mail_requests``) and the recipient,
whoever asks (``per_recipient_mail``). The recipient is known in Redis only by a keyed hash.
Checked before the account lookup, so a 429 says nothing about which addresses have accounts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from redis.exceptions import RedisError

from control_plane.core.auth import client_ip, limiter_of, resources
from control_plane.core.ratelimit import Bucket

log = structlog.get_logger(__name__)
HOUR_MS = 3_600_000


async def spend_mail(connection: ASGIConnection[Any, Any, Any, Any], email: str) -> None:
    """One mail-causing request from this address to ``email``; 429 past either budget."""
    res = resources(connection)
    settings = res.settings.accounts
    recipient = hashlib.blake2b(
        email.strip().lower().encode(), key=res.settings.security.token_key[:64], digest_size=16
    ).hexdigest()
    buckets = []
    if settings.mail_requests_per_address_per_hour > 0:
        buckets.append(
            Bucket(
                "per_ip_mail_requests",
                f"mail:ip:{client_ip(connection)}",
                settings.mail_requests_per_address_per_hour,
                HOUR_MS,
            )
        )
    if settings.mails_per_recipient_per_hour > 0:
        buckets.append(
            Bucket(
                "per_recipient_mail",
                f"mail:to:{recipient}",
                settings.mails_per_recipient_per_hour,
                HOUR_MS,
            )
        )
    if not buckets:
        return
    try:
        await limiter_of(res).spend(buckets)
    except RedisError:
        log.warning("mail_rate_limit_skipped", reason="redis unavailable")
