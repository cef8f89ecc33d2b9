"""Event webhook subscriptions: the service owns the transactions; every query is scoped to the
org. The URL is validated like a webhook channel's (https; no private or loopback address unless
the deployment delivers to them; the operator's deny-list); the secret is sealed and read back as
``"***"``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from msgspec import UNSET
from psycopg import AsyncConnection

from control_plane.core import abuse
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.notifications.delivery import Sender
from control_plane.domain.notifications.schemas import TestResult
from control_plane.domain.notifications.service import allow_private, context, validate_config
from control_plane.domain.notifications.transports.base import JSON, REDACTED, HttpRequest
from control_plane.domain.notifications.transports.webhook import MIN_SECRET, WebhookConfig, sign
from control_plane.security.sealing import Sealer

from .events import EVENTS
from .schemas import Webhook, WebhookCreate, WebhookDelivery, WebhookUpdate

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.webhooks")
SECRET_FIELD = "secret"
USER_AGENT = "Vigil-Webhook/1"


def webhook_not_found() -> ApiError:
    return not_found("WEBHOOK_NOT_FOUND", "webhook")


def _webhook(row: dict[str, Any]) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=list(row["events"]),
        secret=REDACTED if row["secret"] else None,
        enabled=row["enabled"],
        write_source=row["write_source"],
        circuit_open_until=row["circuit_open_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def check_events(events: list[str]) -> list[str]:
    """Known event names, each once, in the given order (400 ``UNKNOWN_EVENT`` otherwise)."""
    if not events:
        raise ApiError(400, "UNKNOWN_EVENT", "events needs at least one event name", "/events")
    for i, name in enumerate(events):
        if name not in EVENTS:
            raise ApiError(
                400,
                "UNKNOWN_EVENT",
                f"unknown event {name!r}; events: {', '.join(EVENTS)}",
                f"/events/{i}",
                details={"allowed": list(EVENTS)},
            )
    return list(dict.fromkeys(events))


def check_secret(secret: str) -> None:
    if secret == REDACTED:
        raise ApiError(
            400,
            "REDACTION_SENTINEL",
            'secret is the redaction sentinel "***": supply the real secret, or omit it on '
            "PATCH to keep the stored one",
            "/secret",
        )
    if len(secret) < MIN_SECRET:
        raise ApiError(
            400,
            "INVALID_WEBHOOK_SECRET",
            f"secret must be at least {MIN_SECRET} characters",
            "/secret",
        )


def request_for(url: str, secret: str | None, payload: Any, now: datetime) -> HttpRequest:
    """The signed POST of one event: ``X-Vigil-Timestamp`` and ``X-Vigil-Signature:
    sha256=<hex>`` over ``"{timestamp}.{body}"`` when the subscription has a secret; the event id
    as ``X-Vigil-Event-Id`` too."""
    body = payload if isinstance(payload, bytes) else JSON.encode(payload)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if isinstance(payload, dict) and payload.get("id"):
        headers["X-Vigil-Event-Id"] = str(payload["id"])
        headers["X-Vigil-Event"] = str(payload.get("event", ""))
    if secret:
        ts = int(now.timestamp())
        headers["X-Vigil-Timestamp"] = str(ts)
        headers["X-Vigil-Signature"] = sign(secret, ts, body)
    return HttpRequest(url=url, body=body, headers=headers)


class WebhookService(TenantService):
    def _url(self, url: str) -> str:
        """The URL checked as a webhook channel's is (errors point at ``/url``)."""
        try:
            validate_config(WebhookConfig(url=url), context(self.settings))
        except ApiError as exc:
            code = "INVALID_WEBHOOK_URL" if exc.code == "INVALID_CHANNEL_CONFIG" else exc.code
            raise ApiError(400, code, exc.message, "/url", exc.details) from None
        return url

    def _seal(self, webhook_id: uuid.UUID, secret: str | None) -> str | None:
        if secret is None:
            return None
        return self.sealer.seal(secret, Sealer.binding(self.org.org_id, webhook_id, SECRET_FIELD))

    def _open(self, webhook_id: uuid.UUID, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        return self.sealer.open(sealed, Sealer.binding(self.org.org_id, webhook_id, SECRET_FIELD))

    async def _fetch(self, conn: AsyncConnection[Any], webhook_id: uuid.UUID) -> dict[str, Any]:
        row = await (
            await conn.execute(Q.get_webhook, {"org_id": self.org.org_id, "id": webhook_id})
        ).fetchone()
        if row is None:
            raise webhook_not_found()
        return dict(row)

    async def create(self, body: WebhookCreate, write_source: str) -> Webhook:
        url = self._url(body.url)
        events = check_events(body.events)
        if body.secret is not None:
            check_secret(body.secret)
        conn = await self.conn()
        await abuse.check_url(conn, url, "/url")
        webhook_id = new_id()
        async with conn.transaction():
            await conn.execute(
                Q.insert_webhook,
                {
                    "id": webhook_id,
                    "org_id": self.org.org_id,
                    "url": url,
                    "events": events,
                    "secret": self._seal(webhook_id, body.secret),
                    "enabled": body.enabled,
                    "write_source": write_source,
                },
            )
            created = _webhook(await self._fetch(conn, webhook_id))
            await self.audit(conn, "webhook.create", "webhook", webhook_id, after=created)
        return created

    async def get(self, webhook_id: uuid.UUID) -> Webhook:
        return _webhook(await self._fetch(await self.conn(), webhook_id))

    async def page(self, limit: int, offset: int) -> tuple[list[Webhook], int]:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.webhooks_page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            count = await (await conn.execute(Q.webhooks_count, params)).fetchone()
            total = int(count["total"]) if count else 0
        return [_webhook(r) for r in rows], total

    async def update(
        self, webhook_id: uuid.UUID, body: WebhookUpdate, write_source: str
    ) -> Webhook:
        url = None if body.url is UNSET else self._url(body.url)
        events = None if body.events is UNSET else check_events(body.events)
        if isinstance(body.secret, str):
            check_secret(body.secret)  # "***" too: the reference's REDACTION_SENTINEL
        conn = await self.conn()
        if url is not None:
            await abuse.check_url(conn, url, "/url")
        async with conn.transaction():
            row = await (
                await conn.execute(Q.lock_webhook, {"org_id": self.org.org_id, "id": webhook_id})
            ).fetchone()
            if row is None:
                raise webhook_not_found()
            before = _webhook(row)
            sealed = row["secret"]
            if body.secret is None:
                sealed = None
            elif isinstance(body.secret, str):
                sealed = self._seal(webhook_id, body.secret)
            await conn.execute(
                Q.update_webhook,
                {
                    "org_id": self.org.org_id,
                    "id": webhook_id,
                    "url": row["url"] if url is None else url,
                    "events": list(row["events"]) if events is None else events,
                    "secret": sealed,
                    "enabled": row["enabled"] if body.enabled is UNSET else body.enabled,
                    "write_source": write_source,
                },
            )
            after = _webhook(await self._fetch(conn, webhook_id))
            await self.audit(
                conn, "webhook.update", "webhook", webhook_id, before=before, after=after
            )
        return after

    async def delete(self, webhook_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(Q.lock_webhook, {"org_id": self.org.org_id, "id": webhook_id})
            ).fetchone()
            if row is None:
                raise webhook_not_found()
            await conn.execute(Q.delete_webhook, {"org_id": self.org.org_id, "id": webhook_id})
            await self.audit(conn, "webhook.delete", "webhook", webhook_id, before=_webhook(row))

    async def deliveries(
        self, webhook_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[list[WebhookDelivery], int]:
        conn = await self.conn()
        await self._fetch(conn, webhook_id)
        params = {"org_id": self.org.org_id, "id": webhook_id, "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.deliveries, params)).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        if not rows and offset:
            count = await (await conn.execute(Q.deliveries_count, params)).fetchone()
            total = int(count["total"]) if count else 0
        fields = WebhookDelivery.__struct_fields__
        return [WebhookDelivery(**{k: r[k] for k in fields}) for r in rows], total

    async def test(self, webhook_id: uuid.UUID) -> TestResult:
        """Send a signed ``webhook.test`` event now (not through the outbox: the caller waits for
        the answer); 422 ``WEBHOOK_TEST_FAILED`` when the receiver does not take it."""
        conn = await self.conn()
        row = await self._fetch(conn, webhook_id)
        await abuse.check_url(conn, row["url"], "/url")
        secret = self._open(webhook_id, row["secret"])
        await self.close()  # hold no connection while the receiver answers
        now = datetime.now(UTC)
        payload = {
            "id": str(new_id()),
            "event": "webhook.test",
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "webhook": {"id": str(webhook_id), "events": list(row["events"])},
            "test": True,
        }
        sender = Sender(self.settings.notify, allow_private(self.settings))
        try:
            attempt = await sender.send_requests(
                [request_for(row["url"], secret, payload, now)], [secret] if secret else []
            )
        finally:
            await sender.close()
        log.info(
            "webhook_test",
            webhook_id=str(webhook_id),
            outcome=attempt.outcome,
            status_code=attempt.status_code,
        )
        if attempt.outcome != "delivered":
            raise ApiError(
                422,
                "WEBHOOK_TEST_FAILED",
                f"the test event was not delivered: {attempt.error or 'failed'}",
                details={"status_code": attempt.status_code},
            )
        return TestResult(ok=True, status_code=attempt.status_code, latency_ms=attempt.latency_ms)
