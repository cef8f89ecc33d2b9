"""Target-level rules beyond the check spec: interval floors, tags, alerts, region policy."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from control_plane.core.errors import ApiError
from control_plane.core.ids import parse_uuid
from control_plane.core.text import clean_text, has_control
from shared import codes
from shared.checks import (
    ABSOLUTE_MIN_INTERVAL,
    KIND_MIN_INTERVAL,
    MAX_INTERVAL,
    CheckSpec,
    HeartbeatCheck,
    check_kind,
)
from shared.netguard import (
    LOCALHOST_RANGE,
    blocked_range,
    canonical_host,
    ip_literal,
    is_localhost,
)
from shared.validation import SpecError, validate_check

from .schemas import AlertBinding, RegionCount, RegionPolicy

POLICIES = frozenset({"any", "majority", "all"})
MAX_TAGS = 50
MAX_TAG_LEN = 64
_TAG = re.compile(r"^[^\s,]+$")
MAX_CONFIRMATIONS = 100
MAX_RENOTIFY = 30 * 86400


def check(spec: CheckSpec) -> None:
    """The spec on its own; whether its hosts may be private depends on the regions it runs
    from (``ssrf``, called by the service once it knows them)."""
    try:
        validate_check(spec)
    except SpecError as err:
        raise ApiError.from_spec(err, "/check") from None


def _probed_hosts(spec: CheckSpec) -> list[tuple[str, str]]:
    """(pointer, canonical host) of every address a check of this spec connects to: the host
    as the agent will judge it (``shared.netguard.canonical_host``)."""
    hosts: list[tuple[str, str]] = []
    url = getattr(spec, "url", None)
    if isinstance(url, str):
        try:
            host = urlsplit(url).hostname
        except ValueError:  # not a URL at all: validation says so, there is nothing to judge
            host = None
        if host:
            hosts.append(("/check/url", canonical_host(host)))
    for field in ("host", "server"):
        value = getattr(spec, field, None)
        if isinstance(value, str):
            hosts.append((f"/check/{field}", canonical_host(value)))
    return hosts


def ssrf(spec: CheckSpec) -> None:
    """An IP-literal host in a blocked range is refused now, judged in its canonical form, and
    so is ``localhost`` (and any name under it), which RFC 6761 makes loopback whatever DNS
    says. Other names are checked by the agent at every connection (they may resolve
    differently then)."""
    for pointer, host in _probed_hosts(spec):
        if is_localhost(host):
            raise ApiError(
                400,
                codes.SSRF_BLOCKED,
                f"{host} is always a loopback address (RFC 6761); private, loopback, link-local "
                "and metadata addresses cannot be probed on this deployment",
                pointer,
                details={"host": host, "range": LOCALHOST_RANGE},
            )
        ip = ip_literal(host)
        blocked = blocked_range(ip) if ip is not None else None
        if blocked:
            raise ApiError(
                400,
                codes.SSRF_BLOCKED,
                f"{ip} is in a blocked range ({blocked}); private, loopback, link-local and "
                "metadata addresses cannot be probed on this deployment",
                pointer,
                details={"address": str(ip), "range": blocked},
            )


def name(value: str) -> str:
    return clean_text(value, field="/name", code="INVALID_NAME", max_len=200)


def interval(value: int, spec: CheckSpec, org_min: int) -> None:
    if not 1 <= value <= MAX_INTERVAL:
        raise ApiError(
            400,
            "INVALID_INTERVAL",
            f"interval must be between 1 and {MAX_INTERVAL} seconds",
            "/interval",
        )
    kind = check_kind(spec)
    kind_min = KIND_MIN_INTERVAL.get(kind, ABSOLUTE_MIN_INTERVAL)
    floor = max(org_min, kind_min, ABSOLUTE_MIN_INTERVAL)
    if value < floor:
        raise ApiError(
            422,
            "MIN_CHECK_INTERVAL",
            f"interval {value}s is below the floor of {floor}s for {kind} checks",
            "/interval",
            {"floor": floor, "kind_min": kind_min, "org_min": org_min},
        )
    if not isinstance(spec, HeartbeatCheck) and spec.timeout >= value * 1000:
        raise ApiError(
            400,
            "INVALID_TIMEOUT",
            f"timeout {spec.timeout} ms must be shorter than the interval ({value}s)",
            "/check/timeout",
        )


def tags(values: list[str]) -> list[str]:
    out: list[str] = []
    for i, tag in enumerate(values):
        if not (1 <= len(tag) <= MAX_TAG_LEN and _TAG.match(tag)) or has_control(tag):
            raise ApiError(
                400,
                "INVALID_TAG",
                f"tag must be 1 to {MAX_TAG_LEN} characters with no spaces or commas",
                f"/tags/{i}",
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ApiError(400, "INVALID_TAG", f"at most {MAX_TAGS} tags", "/tags")
    return out


def alert_fields(confirmations: int, renotify: int) -> None:
    if not 1 <= confirmations <= MAX_CONFIRMATIONS:
        raise ApiError(
            400,
            "INVALID_ALERT_CONFIG",
            f"alert_confirmations must be >= 1 (and at most {MAX_CONFIRMATIONS})",
            "/alert_confirmations",
        )
    if renotify != 0 and not 60 <= renotify <= MAX_RENOTIFY:
        raise ApiError(
            400,
            "INVALID_ALERT_CONFIG",
            "renotify_interval_secs must be 0 (off) or at least 60",
            "/renotify_interval_secs",
        )


def alert_channel_ids(bindings: list[AlertBinding]) -> list[str]:
    """Parse and de-duplicate-check channel ids; existence is checked against the org's rows."""
    seen: list[str] = []
    for i, binding in enumerate(bindings):
        parsed = parse_uuid(binding.channel_id)
        if parsed is None:
            raise ApiError(
                400,
                "INVALID_ALERT_CONFIG",
                f"notification channel {binding.channel_id} does not exist",
                f"/alerts/{i}/channel_id",
            )
        if str(parsed) in seen:
            raise ApiError(
                400,
                "INVALID_ALERT_CONFIG",
                f"duplicate channel_id {binding.channel_id}",
                f"/alerts/{i}/channel_id",
            )
        seen.append(str(parsed))
    return seen


def region_policy_shape(policy: RegionPolicy) -> None:
    if isinstance(policy, str) and policy not in POLICIES:
        raise ApiError(
            400,
            "INVALID_REGION_POLICY",
            'region_policy must be "any", "majority", "all" or {"count": N}',
            "/region_policy",
        )


def region_policy_fits(policy: RegionPolicy, region_count: int, field: str) -> None:
    if isinstance(policy, RegionCount) and not 1 <= policy.count <= region_count:
        raise ApiError(
            422,
            "INVALID_REGION_POLICY",
            f"region_policy count {policy.count} must be between 1 and the "
            f"{region_count} region(s) the target probes from",
            field,
            {"count": policy.count, "regions": region_count},
        )
