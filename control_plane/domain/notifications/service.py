"""Notification channels: the service owns transactions, routes parse and authorise.

A channel's config is validated by its transport (``transports/``), its secrets sealed by
``codec.py``; creation is capped per org (``max_notification_channels``, atomic:
``core/quotas.py``). Deleting a channel deletes its alert bindings (``target_alerts`` cascades).
Test sends go through the same ``Sender`` as deliveries (the SSRF guard included).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from msgspec import UNSET
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from control_plane.core import abuse, quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.mail import MailError, send_mail
from control_plane.core.service import Service, TenantService
from control_plane.core.text import clean_text
from control_plane.db.sql import Queries
from control_plane.security.sealing import SecretUnavailable
from control_plane.security.tokens import token_hash
from control_plane.settings import Settings
from shared.netguard import blocked_range, ip_literal, is_localhost

from . import codec
from .delivery import Sender
from .schemas import (
    Channel,
    ChannelCreate,
    ChannelTest,
    ChannelUpdate,
    DeliveryAttempt,
    Notification,
    TestResult,
)
from .transports.base import Alert, Config, Context
from .transports.registry import TRANSPORTS, kind_of, refuse_managed

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.notify")
VERIFY_TTL = timedelta(hours=24)
# Verification mails per channel and day.
VERIFY_CAP = 5


def _address(cfg: Config) -> str:
    return str(msgspec.to_builtins(cfg)["to"])


def channel_not_found() -> ApiError:
    return not_found("CHANNEL_NOT_FOUND", "notification channel")


def allow_private(settings: Settings) -> bool:
    return settings.notify.allow_private or settings.security.allow_private_targets


def context(settings: Settings, now: datetime | None = None) -> Context:
    return Context(
        settings=settings.notify, allow_private=allow_private(settings), now=now, mail=settings.mail
    )


def channel_name(value: str) -> str:
    return clean_text(value, field="/name", code="CHANNEL_NAME_INVALID", max_len=100)


def validate_config(cfg: Config, ctx: Context) -> None:
    info = TRANSPORTS[kind_of(cfg)]
    info.validate(cfg, ctx)
    if info.url_field and not ctx.allow_private:
        host = urlsplit(getattr(cfg, info.url_field)).hostname or ""
        pointer = f"/config/{info.url_field}"
        if is_localhost(host):
            raise ApiError(
                400,
                "SSRF_BLOCKED",
                f"{host} is a loopback address; this deployment does not deliver to private "
                "addresses",
                pointer,
                details={"host": host},
            )
        ip = ip_literal(host)
        hit = blocked_range(ip) if ip is not None else None
        if hit:
            raise ApiError(
                400,
                "SSRF_BLOCKED",
                f"{ip} is in a blocked range ({hit}); this deployment does not deliver to "
                "private addresses",
                pointer,
                details={"address": str(ip), "range": hit},
            )


def row_to_channel(row: dict[str, Any]) -> Channel:
    return Channel(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        enabled=row["enabled"],
        config=codec.redacted(row["config"]),
        write_source=row["write_source"],
        verified=row["kind"] != "email" or row["verified_at"] is not None,
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def audited(ch: Channel) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(ch)
    return out


def test_alert(name: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        kind="test",
        incident_id="00000000-0000-0000-0000-000000000000",
        target_id="00000000-0000-0000-0000-000000000000",
        target_name="Vigil test monitor",
        target_kind="http",
        target_address="https://example.com/",
        status="down",
        started_at=now,
        cause="synthetic test alert",
        channel_name=name,
    )


async def send_test(settings: Settings, cfg: Config, name: str) -> TestResult:
    sender = Sender(settings.notify, allow_private(settings))
    try:
        attempt = await sender.send(cfg, test_alert(name), context(settings))
    finally:
        await sender.close()
    log.info(
        "notify_test",
        transport=kind_of(cfg),
        outcome=attempt.outcome,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
    )
    if attempt.outcome != "delivered":
        raise ApiError(
            422,
            "CHANNEL_TEST_FAILED",
            f"the test alert was not delivered: {attempt.error or 'failed'}",
            details={"status_code": attempt.status_code},
        )
    return TestResult(ok=True, status_code=attempt.status_code, latency_ms=attempt.latency_ms)


class ChannelService(TenantService):
    def _ctx(self) -> Context:
        return context(self.settings)

    def _parse(self, raw: Config) -> Config:
        cfg = refuse_managed(raw)
        codec.refuse_sentinel(cfg)
        validate_config(cfg, self._ctx())
        return cfg

    async def _denylisted(self, cfg: Config) -> None:
        """The operator's deny-list (``core/abuse``) on the URL a channel delivers to."""
        field = TRANSPORTS[kind_of(cfg)].url_field
        if field:
            await abuse.check_url(await self.conn(), getattr(cfg, field), f"/config/{field}")

    def _token(self) -> tuple[str, bytes]:
        """A fresh single-use verification token and the hash stored for it."""
        token = secrets.token_urlsafe(32)
        return token, token_hash(self.settings.security.token_key, token)

    async def _mail_link(self, channel_id: uuid.UUID, to: str, token: str) -> None:
        """Mail the link (after the row holding its hash committed). A mail that cannot be sent
        is logged: the owner can resend."""
        link = f"{self.public_url}/verify/channel/{token}"
        try:
            await send_mail(
                self.settings.mail,
                to=to,
                subject="[Vigil] Confirm this address for alerts",
                text=(
                    "Vigil was asked to send monitoring alerts to this address.\n"
                    f"Confirm within 24 hours: {link}\n"
                    "If you did not expect this, ignore this mail."
                ),
            )
        except MailError as exc:
            log.warning(
                "channel_verification_mail_failed", channel_id=str(channel_id), error=str(exc)[:200]
            )

    async def create(self, data: ChannelCreate, write_source: str) -> Channel:
        conn = await self.conn()
        name = channel_name(data.name)
        cfg = self._parse(data.config)
        await self._denylisted(cfg)
        channel_id = new_id()
        public, sealed = codec.seal(self.sealer, self.org.org_id, channel_id, cfg)
        token, verify_hash = self._token() if kind_of(cfg) == "email" else ("", None)
        async with conn.transaction():
            await quotas.enforce(
                conn,
                self.org.org_id,
                "max_notification_channels",
                Q.count_org_channels,
                code="CHANNEL_QUOTA_EXCEEDED",
            )
            row = await (
                await conn.execute(
                    Q.insert_channel,
                    {
                        "id": channel_id,
                        "org_id": self.org.org_id,
                        "name": name,
                        "kind": kind_of(cfg),
                        "config": Jsonb(public),
                        "secrets": Jsonb(sealed),
                        "enabled": data.enabled,
                        "write_source": write_source,
                        "verified_at": None,
                        "verify_token_hash": verify_hash,
                        "verify_expires_at": (
                            datetime.now(UTC) + VERIFY_TTL if verify_hash else None
                        ),
                    },
                )
            ).fetchone()
            if row is None:
                raise name_taken(name)
            created = await self._fetch(conn, channel_id)
            await self.audit(conn, "channel.create", "channel", channel_id, after=audited(created))
        if token:
            await self._mail_link(channel_id, _address(cfg), token)
        log.info("channel_created", channel_id=str(channel_id), transport=kind_of(cfg))
        return created

    async def _fetch(self, conn: AsyncConnection[Any], channel_id: uuid.UUID) -> Channel:
        row = await (
            await conn.execute(Q.get_channel, {"org_id": self.org.org_id, "id": channel_id})
        ).fetchone()
        if row is None:
            raise channel_not_found()
        return row_to_channel(row)

    async def get(self, channel_id: uuid.UUID) -> Channel:
        return await self._fetch(await self.conn(), channel_id)

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Channel], int]:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_channels, params)).fetchall()
        total = await (await conn.execute(Q.count_org_channels, params)).fetchone()
        return [row_to_channel(r) for r in rows], int(total["n"] if total else 0)

    def _stored(self, row: dict[str, Any]) -> Config:
        try:
            return codec.open_config(
                self.sealer, self.org.org_id, row["id"], row["config"], row["secrets"]
            )
        except SecretUnavailable:
            raise ApiError(
                503,
                "DEPENDENCY_DOWN",
                "the channel's secrets cannot be opened with the current keys",
            ) from None

    async def update(
        self, channel_id: uuid.UUID, data: ChannelUpdate, write_source: str
    ) -> Channel:
        conn = await self.conn()
        org_id = self.org.org_id
        name = None if data.name is UNSET else channel_name(data.name)
        new_cfg = None if data.config is UNSET else refuse_managed(data.config)
        async with conn.transaction():
            row = await (
                await conn.execute(Q.lock_channel, {"org_id": org_id, "id": channel_id})
            ).fetchone()
            if row is None:
                raise channel_not_found()
            before = row_to_channel(row)
            public, sealed, kind = row["config"], row["secrets"], row["kind"]
            verified_at = row["verified_at"]
            verify_hash, verify_expires = row["verify_token_hash"], row["verify_expires_at"]
            reset = False
            token, mail_to = "", ""
            if new_cfg is not None:
                # The reference: a config still carrying "***" is refused, also on PATCH
                # (omit config to keep the stored secrets).
                codec.refuse_sentinel(new_cfg)
                validate_config(new_cfg, self._ctx())
                await self._denylisted(new_cfg)
                public, sealed = codec.seal(self.sealer, org_id, channel_id, new_cfg)
                kind = kind_of(new_cfg)
                reset = True
                if kind == "email" and (
                    row["kind"] != "email" or row["config"].get("to") != _address(new_cfg)
                ):
                    # A new address resets the gate and sends a new link.
                    verified_at = None
                    token, verify_hash = self._token()
                    mail_to = _address(new_cfg)
                    verify_expires = datetime.now(UTC) + VERIFY_TTL
            if name is not None and name != row["name"]:
                taken = await (
                    await conn.execute(
                        Q.name_taken, {"org_id": org_id, "name": name, "id": channel_id}
                    )
                ).fetchone()
                if taken:
                    raise name_taken(name)
            enabled = row["enabled"] if data.enabled is UNSET else data.enabled
            await conn.execute(
                Q.update_channel,
                {
                    "org_id": org_id,
                    "id": channel_id,
                    "name": name if name is not None else row["name"],
                    "kind": kind,
                    "config": Jsonb(public),
                    "secrets": Jsonb(sealed),
                    "enabled": enabled,
                    "write_source": write_source,
                    "verified_at": verified_at,
                    "verify_token_hash": verify_hash,
                    "verify_expires_at": verify_expires,
                    "reset_circuit": reset,
                },
            )
            updated = await self._fetch(conn, channel_id)
            await self.audit(
                conn,
                "channel.update",
                "channel",
                channel_id,
                before=audited(before),
                after=audited(updated),
            )
        if token:
            await self._mail_link(channel_id, mail_to, token)
        return updated

    async def delete(self, channel_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(Q.lock_channel, {"org_id": self.org.org_id, "id": channel_id})
            ).fetchone()
            if row is None:
                raise channel_not_found()
            await conn.execute(Q.delete_channel, {"org_id": self.org.org_id, "id": channel_id})
            await self.audit(
                conn, "channel.delete", "channel", channel_id, before=audited(row_to_channel(row))
            )

    async def test_unsaved(self, data: ChannelTest) -> TestResult:
        cfg = self._parse(data.config)
        await self._denylisted(cfg)
        if kind_of(cfg) == "email":
            raise ApiError(
                422,
                "CHANNEL_UNVERIFIED",
                "an unsaved email channel is not verified: save it and follow the link first",
            )
        return await send_test(self.settings, cfg, "unsaved channel")

    async def test_saved(self, channel_id: uuid.UUID) -> TestResult:
        conn = await self.conn()
        row = await (
            await conn.execute(Q.get_channel, {"org_id": self.org.org_id, "id": channel_id})
        ).fetchone()
        if row is None:
            raise channel_not_found()
        cfg = self._stored(row)
        if row["kind"] == "email" and row["verified_at"] is None:
            raise ApiError(422, "CHANNEL_UNVERIFIED", "email address not verified")
        until = row["circuit_open_until"]
        if until is not None and until > datetime.now(UTC):
            raise ApiError(
                422,
                "CIRCUIT_OPEN",
                "deliveries to this channel keep failing: its circuit is open until "
                f"{until.isoformat(timespec='seconds')}",
                details={"open_until": until.isoformat()},
            )
        await self.close()  # hold no connection while the receiver answers
        return await send_test(self.settings, cfg, row["name"])

    async def resend_verification(self, channel_id: uuid.UUID) -> Channel:
        conn = await self.conn()
        row = await (
            await conn.execute(Q.get_channel, {"org_id": self.org.org_id, "id": channel_id})
        ).fetchone()
        if row is None:
            raise channel_not_found()
        if row["kind"] != "email":
            raise ApiError(
                422, "CHANNEL_NOT_VERIFIABLE", f"a {row['kind']} channel has nothing to verify"
            )
        if row["verified_at"] is not None:
            raise ApiError(422, "CHANNEL_NOT_VERIFIABLE", "this address is already verified")
        today = datetime.now(UTC).date()
        if row["verify_day"] == today and row["verify_sent"] >= VERIFY_CAP:
            raise ApiError(
                422,
                "CHANNEL_VERIFICATION_LIMIT",
                f"at most {VERIFY_CAP} verification mails per channel and day",
            )
        token, new_hash = self._token()
        await conn.execute(
            Q.note_verification_sent,
            {"id": channel_id, "org_id": self.org.org_id, "hash": new_hash},
        )
        await self._mail_link(channel_id, row["config"]["to"], token)
        return await self._fetch(conn, channel_id)

    async def notifications(self, incident_id: uuid.UUID) -> list[Notification]:
        conn = await self.conn()
        owned = await (
            await conn.execute(Q.incident_owned, {"org_id": self.org.org_id, "id": incident_id})
        ).fetchone()
        if owned is None:
            raise not_found("INCIDENT_NOT_FOUND", "incident")
        rows = await (
            await conn.execute(
                Q.incident_notifications, {"org_id": self.org.org_id, "incident_id": incident_id}
            )
        ).fetchall()
        return [
            Notification(
                id=r["id"],
                channel_id=r["channel_id"],
                channel_name=r["channel_name"],
                channel_kind=r["channel_kind"],
                kind=r["kind"],
                state=r["state"],
                held=bool(r["held"]),
                attempts=r["attempts"],
                due_at=r["due_at"],
                created_at=r["created_at"],
                delivered_at=r["delivered_at"],
                last_error=r["last_error"],
                attempt_log=msgspec.convert(r["attempt_log"], list[DeliveryAttempt], strict=False),
            )
            for r in rows
        ]

    async def retry(self, incident_id: uuid.UUID, notification_id: uuid.UUID) -> list[Notification]:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "incident_id": incident_id, "id": notification_id}
        async with conn.transaction():
            row = await (await conn.execute(Q.notification_state, params)).fetchone()
            if row is None:
                raise not_found("NOTIFICATION_NOT_FOUND", "notification")
            if row["state"] != "dead":
                raise ApiError(
                    409,
                    "NOTIFICATION_NOT_DEAD",
                    f"only a dead letter can be retried; this one is {row['state']}",
                )
            await conn.execute(Q.retry_notification, params)
            await self.audit(conn, "notification.retry", "notification", notification_id)
        return await self.notifications(incident_id)


def name_taken(name: str) -> ApiError:
    return ApiError(422, "CHANNEL_NAME_TAKEN", f"a channel named {name!r} already exists", "/name")


class VerificationService(Service):
    """The public side of email verification: the link's token is the credential."""

    async def verify(self, token: str) -> uuid.UUID | None:
        conn = await self.conn()
        row = await (
            await conn.execute(
                Q.verify_channel,
                {"hash": token_hash(self.settings.security.token_key, token)},
            )
        ).fetchone()
        return row["id"] if row else None
