"""Configuration from the environment, grouped by concern.

Nothing is read at import time: ``get_settings()`` builds the object on first use and caches it;
tests build their own ``Settings`` and pass it to the app factory.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit


class SettingsError(RuntimeError):
    """A configuration value is missing or malformed."""


# Shortest minute-rollup retention accepted. The worker never drops a day before its hours are
# written (it waits for the settled point), but the hourly roll-up and a restarted worker's
# catch-up read minute rows up to a day back, and /latency over the last day reads minutes: a
# day of slack on top of that. A shorter value is refused at start-up.
MIN_MINUTE_ROLLUP_RETENTION_DAYS = 2


def _minute_rollup_retention_days(e: dict[str, str]) -> int:
    name = "VIGIL_MINUTE_ROLLUP_RETENTION_DAYS"
    raw = e.get(name, "").strip() or "0"
    try:
        days = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: expected a whole number of days") from exc
    if days < 0 or 0 < days < MIN_MINUTE_ROLLUP_RETENTION_DAYS:
        raise SettingsError(
            f"{name}={days}: expected 0 (keep forever) or at least "
            f"{MIN_MINUTE_ROLLUP_RETENTION_DAYS} days (the hourly rollups are built from the "
            "minute rows, which must outlive them being written)"
        )
    return days


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str
    pool_min: int = 2
    pool_max: int = 20
    # Seconds a request waits for a pooled connection before answering 503 DEPENDENCY_DOWN
    # (PostgreSQL down or saturated): short, so agents spool at once instead of timing out.
    acquire_timeout_secs: float = 3.0
    # Raw results older than this many days are dropped (whole daily partitions, once rolled
    # up); the rollups stay (the minute ones subject to their own retention). 0 keeps raw
    # results forever.
    raw_retention_days: int = 0
    # Per-minute rollups older than this many days are dropped (whole daily partitions, once
    # their hours are in the hourly rollups, which stay). 0 keeps them forever; otherwise at
    # least MIN_MINUTE_ROLLUP_RETENTION_DAYS.
    minute_rollup_retention_days: int = 0


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    prefix: str = "vigil:"


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    # HMAC key for API/agent/share token hashes.
    token_key: bytes
    # Sealing keys at rest: key id -> 32-byte AES key; ``primary_key_id`` seals new values.
    sealing_keys: dict[str, bytes]
    primary_key_id: str
    # Static bearer secret for /operator; None disables the surface (404).
    operator_admin_token: str | None = None
    allow_private_targets: bool = False
    # Bearer token a /metrics scrape must bring; None leaves /metrics open (bind it privately).
    metrics_token: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    # Org floor on check interval when the org row does not override it.
    default_min_interval_secs: int = 10
    log_level: str = "info"
    # The URL users reach the API at (``https://vigil.example.com``): the base of the links the
    # API hands out. None: the origin of each request (right unless a proxy rewrites the Host).
    public_url: str | None = None


@dataclass(frozen=True, slots=True)
class MailSettings:
    """The one SMTP path: email channels, invitations and password resets all send through it.

    ``host`` unset means mail is not configured: sending raises ``MailUnavailable``.
    ``security`` is ``starttls`` (upgrade after connect), ``tls`` (implicit TLS, port 465) or
    ``none`` (local relays and test servers only).
    """

    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = None
    security: str = "starttls"
    sender: str = "Vigil <vigil@localhost>"
    timeout_secs: float = 10.0


MAIL_SECURITY = ("starttls", "tls", "none")


def _mail(e: dict[str, str]) -> MailSettings:
    security = (e.get("VIGIL_SMTP_SECURITY") or "starttls").strip().lower()
    if security not in MAIL_SECURITY:
        raise SettingsError(
            f"VIGIL_SMTP_SECURITY={security!r}: expected one of {', '.join(MAIL_SECURITY)}"
        )
    return MailSettings(
        host=e.get("VIGIL_SMTP_HOST") or None,
        port=int(e.get("VIGIL_SMTP_PORT") or ("465" if security == "tls" else "587")),
        username=e.get("VIGIL_SMTP_USERNAME") or None,
        password=e.get("VIGIL_SMTP_PASSWORD") or None,
        security=security,
        sender=e.get("VIGIL_SMTP_FROM") or "Vigil <vigil@localhost>",
        timeout_secs=float(e.get("VIGIL_SMTP_TIMEOUT_SECS") or "10"),
    )


@dataclass(frozen=True, slots=True)
class TargetMetricsSettings:
    """Per-target Prometheus series (``vigil_target_up{org,target,region}``…): opt-in per org
    (``VIGIL_TARGET_METRICS_ORGS``, comma-separated ids, ``*`` for every org) or per tag
    (``VIGIL_TARGET_METRICS_TAGS``); at most ``VIGIL_TARGET_METRICS_MAX`` target/region pairs
    are exported (the cardinality guard); off when neither list is set."""

    orgs: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    max_series: int = 2000

    @property
    def enabled(self) -> bool:
        return bool(self.orgs or self.tags) and self.max_series > 0


def _target_metrics(e: dict[str, str]) -> TargetMetricsSettings:
    def items(name: str) -> frozenset[str]:
        return frozenset(p.strip() for p in e.get(name, "").split(",") if p.strip())

    return TargetMetricsSettings(
        orgs=items("VIGIL_TARGET_METRICS_ORGS"),
        tags=items("VIGIL_TARGET_METRICS_TAGS"),
        max_series=int(e.get("VIGIL_TARGET_METRICS_MAX") or "2000"),
    )


# Sends per second per worker (NotifySettings.rate_per_sec).
DEFAULT_NOTIFY_RATE = 1000.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The incident engine in each worker (``domain/incidents``). ``concurrency``: evaluations
    run at once per worker (``VIGIL_ENGINE_CONCURRENCY``); jobs that wait meanwhile are merged
    into the next one (``incidents/slots.py``). One keeps a mass outage's evaluations (and their
    PostgreSQL backends) to about one core, so the agents' lease and ingest keep theirs."""

    concurrency: int = 1
    # Targets evaluated per second per worker, at most (``VIGIL_ENGINE_RATE``; 0: unpaced).
    rate: float = 0.0
    # While more targets than ``surge_inflow`` per second are asked for (a mass outage's ingest
    # burst), evaluate ``surge_rate`` per second (0: none) and deliver no notification; defer
    # the rest, none longer than ``surge_max_secs`` (``incidents/surge.py``;
    # ``VIGIL_ENGINE_SURGE_INFLOW``, 0: off;
    # ``VIGIL_ENGINE_SURGE_RATE``; ``VIGIL_ENGINE_SURGE_MAX_SECS``).
    surge_inflow: float = 1000.0
    surge_rate: float = 0.0
    surge_max_secs: float = 8.0


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Notification delivery (``domain/notifications``).

    ``allow_private``: deliver to private/loopback addresses too (an internal chat server; plain
    http is then accepted for the generic webhook and ntfy). ``VIGIL_ALLOW_PRIVATE_TARGETS``
    also turns it on. ``base_urls``: kind -> base URL replacing the scheme and host of that
    kind's deliveries (a proxy, a mirror, a test server); ``VIGIL_NOTIFY_BASE_URLS`` as
    ``slack=https://proxy.example,pagerduty=…``.
    """

    allow_private: bool = False
    base_urls: dict[str, str] = field(default_factory=dict)
    timeout_secs: float = 10.0
    max_attempts: int = 8
    backoff_base_secs: float = 2.0
    backoff_cap_secs: float = 900.0
    lease_secs: float = 60.0
    # Rows claimed per batch (one claim and one recording statement each); a run claims
    # batches until one is not full or ``run_budget_secs`` is spent. ``concurrency``: sends in
    # flight at once per worker.
    batch: int = 500
    concurrency: int = 64
    # Sends started per second per worker, at most (``notifications/pacing.py``); 0: unpaced.
    # A mass outage's deliveries then spread over more of their 30 s budget instead of
    # competing with the engine and the agents' ingest for the machine's cores.
    rate_per_sec: float = DEFAULT_NOTIFY_RATE
    run_budget_secs: float = 30.0
    # More than ``storm_threshold`` opens for one chat channel within ``storm_window_secs``
    # go out as one grouped message. A chat channel's opens and recoveries are held until none
    # came for ``chat_hold_secs`` (the burst stopped growing) so the decision sees the burst,
    # and at most ``storm_followup_secs`` (the oldest pending one's age); while a storm is being
    # grouped, follow-ups are held ``storm_followup_secs``.
    storm_threshold: int = 5
    storm_window_secs: float = 30.0
    chat_hold_secs: float = 3.0
    storm_followup_secs: float = 30.0
    # Consecutive failed attempts that open a channel's circuit, and for how long.
    circuit_threshold: int = 5
    circuit_open_secs: float = 60.0
    # The central Telegram bot (``telegram_app`` channels, the link-code flow): its token and
    # username; unset, the flow is absent (404 TELEGRAM_LINK_NOT_FOUND). Its API base URL is
    # ``base_urls["telegram"]`` like the bring-your-own kind's.
    telegram_bot_token: str | None = None
    telegram_bot_username: str | None = None
    # The platform's WhatsApp number (``whatsapp_app`` channels, the link-code flow), a number
    # of the operator's WhatsApp Business (Cloud API) account: the number people message
    # (``wa.me/<number>``), its phone number id and access token (sends), the app secret that
    # signs Meta's webhook calls to ``/hooks/whatsapp`` and the verify token of its
    # subscription handshake, and the one-parameter template alerts are sent with. Unset,
    # the flow is absent (404 WHATSAPP_LINK_NOT_FOUND). Its API base URL is
    # ``base_urls["whatsapp"]`` like the bring-your-own kind's.
    whatsapp_number: str | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_access_token: str | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None
    whatsapp_template: str = "vigil_alert"
    whatsapp_language: str = "en"

    @property
    def whatsapp_link_enabled(self) -> bool:
        return bool(
            self.whatsapp_number
            and self.whatsapp_phone_number_id
            and self.whatsapp_access_token
            and self.whatsapp_app_secret
        )


def _base_urls(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        kind, sep, url = part.partition("=")
        parts = urlsplit(url.strip())
        if not sep or parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"VIGIL_NOTIFY_BASE_URLS: expected kind=https://host, got {part!r}")
        out[kind.strip()] = url.strip().rstrip("/")
    return out


def _positive(e: dict[str, str], name: str, default: int) -> int:
    raw = (e.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name}: expected a whole number of at least 1, got {raw!r}")
    return value


def _rate(raw: str | None, name: str, default: float) -> float:
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise SettingsError(f"{name}: expected a number per second (0 = unpaced), got {raw!r}")
    return value


def _notify(e: dict[str, str]) -> NotifySettings:
    number = (e.get("VIGIL_WHATSAPP_NUMBER") or "").strip().lstrip("+")
    if number and not (number.isdigit() and 7 <= len(number) <= 15):
        raise SettingsError(
            "VIGIL_WHATSAPP_NUMBER: expected an international number like +15550001111"
        )
    return NotifySettings(
        allow_private=_bool(e.get("VIGIL_NOTIFY_ALLOW_PRIVATE")),
        base_urls=_base_urls(e.get("VIGIL_NOTIFY_BASE_URLS", "")),
        timeout_secs=float(e.get("VIGIL_NOTIFY_TIMEOUT_SECS") or "10"),
        max_attempts=int(e.get("VIGIL_NOTIFY_MAX_ATTEMPTS") or "8"),
        batch=int(e.get("VIGIL_NOTIFY_BATCH") or "500"),
        concurrency=int(e.get("VIGIL_NOTIFY_CONCURRENCY") or "64"),
        rate_per_sec=_rate(
            e.get("VIGIL_NOTIFY_RATE_PER_SEC"), "VIGIL_NOTIFY_RATE_PER_SEC", DEFAULT_NOTIFY_RATE
        ),
        chat_hold_secs=float(e.get("VIGIL_NOTIFY_CHAT_HOLD_SECS") or "3"),
        storm_followup_secs=float(e.get("VIGIL_NOTIFY_STORM_FOLLOWUP_SECS") or "30"),
        telegram_bot_token=e.get("VIGIL_TELEGRAM_BOT_TOKEN") or None,
        telegram_bot_username=e.get("VIGIL_TELEGRAM_BOT_USERNAME") or None,
        whatsapp_number=number or None,
        whatsapp_phone_number_id=e.get("VIGIL_WHATSAPP_PHONE_NUMBER_ID") or None,
        whatsapp_access_token=e.get("VIGIL_WHATSAPP_ACCESS_TOKEN") or None,
        whatsapp_app_secret=e.get("VIGIL_WHATSAPP_APP_SECRET") or None,
        whatsapp_verify_token=e.get("VIGIL_WHATSAPP_VERIFY_TOKEN") or None,
        whatsapp_template=e.get("VIGIL_WHATSAPP_TEMPLATE") or "vigil_alert",
        whatsapp_language=e.get("VIGIL_WHATSAPP_LANGUAGE") or "en",
    )


@dataclass(frozen=True, slots=True)
class StatusPageSettings:
    """Custom-domain verification: the DNS resolver that looks up the TXT record
    (``VIGIL_STATUS_DNS_SERVER``/``_PORT``; unset: the system's resolvers). The public surface's
    own limits (``domain/public/limits.py``), never counted against a tenant's budgets:
    requests per minute from one client address (``VIGIL_PUBLIC_RATE_PER_MINUTE``, 0: none) and
    public requests one process handles at once before answering 503
    (``VIGIL_PUBLIC_MAX_INFLIGHT``, 0: no cap)."""

    dns_server: str | None = None
    dns_port: int = 53
    dns_timeout_secs: float = 5.0
    public_rate_per_minute: int = 600
    public_max_inflight: int = 500


def _status_pages(e: dict[str, str]) -> StatusPageSettings:
    return StatusPageSettings(
        dns_server=e.get("VIGIL_STATUS_DNS_SERVER") or None,
        dns_port=int(e.get("VIGIL_STATUS_DNS_PORT") or "53"),
        dns_timeout_secs=float(e.get("VIGIL_STATUS_DNS_TIMEOUT_SECS") or "5"),
        public_rate_per_minute=int(e.get("VIGIL_PUBLIC_RATE_PER_MINUTE") or "600"),
        public_max_inflight=int(e.get("VIGIL_PUBLIC_MAX_INFLIGHT") or "500"),
    )


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    """API keys, rate limits and the audit log (issue 15)."""

    # Seconds a process remembers an authenticated key (revocation still holds at once: see
    # core/auth.py); 0 looks every request up in the database.
    key_cache_secs: float = 30.0
    # Failed authentications one client address may make per minute before 429 (0: no limit).
    auth_failures_per_minute: int = 30
    # Audit-log rows older than this many days are deleted by the worker (0 keeps them).
    audit_retention_days: int = 365
    # Browser sessions: how long a sign-in lasts, and whether the cookie is ``Secure`` (keep on
    # unless the API is reached over plain http, e.g. local development).
    session_days: int = 14
    cookie_secure: bool = True
    # Mail a request can cause (password resets, invitations), per hour: from one client
    # address, and to one recipient whoever asks (0: no limit). Past either, 429 RATE_LIMITED.
    mail_requests_per_address_per_hour: int = 20
    mails_per_recipient_per_hour: int = 5
    # A read (GET, HEAD, OPTIONS) with a remembered key runs while the rate limiter's Redis
    # call does, its answer held until the verdict (a refusal replaces it): the round trip
    # overlaps the handler instead of preceding it. Off: every request waits for the verdict.
    rate_limit_overlap_reads: bool = True


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """CORS on /api/v1 (off by default; /healthz and /readyz never carry it)."""

    enabled: bool = False
    allowed_origins: tuple[str, ...] = ()
    allow_any_origin: bool = False
    allowed_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _accounts(e: dict[str, str]) -> AccountsSettings:
    return AccountsSettings(
        key_cache_secs=float(e.get("VIGIL_KEY_CACHE_SECS") or "30"),
        auth_failures_per_minute=int(e.get("VIGIL_AUTH_FAILURES_PER_MINUTE") or "30"),
        audit_retention_days=int(e.get("VIGIL_AUDIT_RETENTION_DAYS") or "365"),
        session_days=int(e.get("VIGIL_SESSION_DAYS") or "14"),
        cookie_secure=_bool(e.get("VIGIL_COOKIE_SECURE"), default=True),
        mail_requests_per_address_per_hour=int(
            e.get("VIGIL_MAIL_REQUESTS_PER_ADDRESS_PER_HOUR") or "20"
        ),
        mails_per_recipient_per_hour=int(e.get("VIGIL_MAILS_PER_RECIPIENT_PER_HOUR") or "5"),
        rate_limit_overlap_reads=_bool(e.get("VIGIL_RATE_LIMIT_OVERLAP_READS"), default=True),
    )


def _cors(e: dict[str, str]) -> CorsSettings:
    def listed(name: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in (e.get(name) or "").split(",") if x.strip())

    methods = listed("VIGIL_CORS_ALLOWED_METHODS")
    return CorsSettings(
        enabled=_bool(e.get("VIGIL_CORS_ENABLED")),
        allowed_origins=listed("VIGIL_CORS_ALLOWED_ORIGINS"),
        allow_any_origin=_bool(e.get("VIGIL_CORS_ALLOW_ANY_ORIGIN")),
        allowed_methods=tuple(m.upper() for m in methods) or CORS_METHODS,
    )


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings
    redis: RedisSettings
    security: SecuritySettings
    api: ApiSettings = field(default_factory=ApiSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    target_metrics: TargetMetricsSettings = field(default_factory=TargetMetricsSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    status_pages: StatusPageSettings = field(default_factory=StatusPageSettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    cors: CorsSettings = field(default_factory=CorsSettings)


def _b64key(raw: str, name: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise SettingsError(f"{name}: not valid base64") from exc
    if len(key) != 32:
        raise SettingsError(f"{name}: key must decode to 32 bytes, got {len(key)}")
    return key


def parse_sealing_keys(raw: str) -> dict[str, bytes]:
    """``kid1:BASE64,kid2:BASE64`` -> {kid: key}. The first one listed is primary by default."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep or not kid:
            raise SettingsError("VIGIL_SECRET_KEYS: expected 'kid:base64key[,kid:base64key…]'")
        keys[kid] = _b64key(b64, f"VIGIL_SECRET_KEYS[{kid}]")
    if not keys:
        raise SettingsError("VIGIL_SECRET_KEYS: at least one key is required")
    return keys


def _public_url(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            f"VIGIL_PUBLIC_URL={raw!r}: expected an http(s) URL such as https://vigil.example.com"
        )
    return raw.rstrip("/")


def _bool(raw: str | None, default: bool = False) -> bool:
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    e = dict(os.environ if env is None else env)

    def need(name: str) -> str:
        value = e.get(name)
        if not value:
            raise SettingsError(f"{name} is not set (run `make dev` for a local stack)")
        return value

    keys = parse_sealing_keys(need("VIGIL_SECRET_KEYS"))
    primary = e.get("VIGIL_SECRET_PRIMARY") or next(iter(keys))
    if primary not in keys:
        raise SettingsError(f"VIGIL_SECRET_PRIMARY={primary!r} is not among VIGIL_SECRET_KEYS")
    return Settings(
        database=DatabaseSettings(
            url=need("VIGIL_DATABASE_URL"),
            pool_min=int(e.get("VIGIL_DB_POOL_MIN", "2")),
            pool_max=int(e.get("VIGIL_DB_POOL_MAX", "20")),
            acquire_timeout_secs=float(e.get("VIGIL_DB_ACQUIRE_TIMEOUT_SECS", "3")),
            raw_retention_days=int(e.get("VIGIL_RAW_RETENTION_DAYS", "0")),
            minute_rollup_retention_days=_minute_rollup_retention_days(e),
        ),
        redis=RedisSettings(
            url=need("VIGIL_REDIS_URL"), prefix=e.get("VIGIL_REDIS_PREFIX", "vigil:")
        ),
        security=SecuritySettings(
            token_key=_b64key(need("VIGIL_TOKEN_KEY"), "VIGIL_TOKEN_KEY"),
            sealing_keys=keys,
            primary_key_id=primary,
            operator_admin_token=e.get("VIGIL_OPERATOR_ADMIN_TOKEN") or None,
            allow_private_targets=_bool(e.get("VIGIL_ALLOW_PRIVATE_TARGETS")),
            metrics_token=e.get("VIGIL_METRICS_TOKEN") or None,
        ),
        api=ApiSettings(
            host=e.get("VIGIL_HOST", "127.0.0.1"),
            port=int(e.get("VIGIL_PORT", "8000")),
            default_min_interval_secs=int(e.get("VIGIL_MIN_INTERVAL_SECS", "10")),
            log_level=e.get("VIGIL_LOG_LEVEL", "info"),
            public_url=_public_url(e.get("VIGIL_PUBLIC_URL", "")),
        ),
        mail=_mail(e),
        target_metrics=_target_metrics(e),
        notify=_notify(e),
        engine=EngineSettings(
            concurrency=_positive(e, "VIGIL_ENGINE_CONCURRENCY", 1),
            rate=_rate(e.get("VIGIL_ENGINE_RATE"), "VIGIL_ENGINE_RATE", 0.0),
            surge_inflow=_rate(
                e.get("VIGIL_ENGINE_SURGE_INFLOW"), "VIGIL_ENGINE_SURGE_INFLOW", 1000.0
            ),
            surge_rate=_rate(e.get("VIGIL_ENGINE_SURGE_RATE"), "VIGIL_ENGINE_SURGE_RATE", 0.0),
            surge_max_secs=_rate(
                e.get("VIGIL_ENGINE_SURGE_MAX_SECS"), "VIGIL_ENGINE_SURGE_MAX_SECS", 8.0
            ),
        ),
        status_pages=_status_pages(e),
        accounts=_accounts(e),
        cors=_cors(e),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
