"""What the public surface draws itself: SVG badges, the RSS feed, the share page's latency
chart. Every text is XML-escaped; nothing here fetches anything."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from .schemas import PublicIncident, SharedLatencyPoint

LABELS = {
    "operational": "operational",
    "under_maintenance": "maintenance",
    "degraded_performance": "degraded",
    "partial_outage": "partial outage",
    "major_outage": "major outage",
}
COLORS = {
    "operational": "#2e7d32",
    "under_maintenance": "#1565c0",
    "degraded_performance": "#b26a00",
    "partial_outage": "#c2410c",
    "major_outage": "#c62828",
}
GREY = "#616161"


def _width(text: str) -> int:
    # Verdana 11px averages about 6.5 px a character; good enough for a badge.
    return int(len(text) * 6.5) + 12


def badge(label: str, message: str, color: str) -> str:
    """A flat shields-style badge."""
    lw, mw = _width(label), _width(message)
    total = lw + mw
    title = escape(f"{label}: {message}")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="{t}" height="20" role="img" '
        "aria-label={aria}><title>{title}</title>"
        '<rect width="{lw}" height="20" fill="#555"/>'
        '<rect x="{lw}" width="{mw}" height="20" fill={color}/>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        '<text x="{lx}" y="14">{label}</text><text x="{mx}" y="14">{message}</text></g></svg>'
    ).format(
        t=total,
        aria=quoteattr(f"{label}: {message}"),
        title=title,
        lw=lw,
        mw=mw,
        color=quoteattr(color),
        lx=lw / 2,
        mx=lw + mw / 2,
        label=escape(label),
        message=escape(message),
    )


def status_badge(label: str, status: str) -> str:
    return badge(label, LABELS.get(status, status), COLORS.get(status, GREY))


def uptime_color(value: float | None) -> str:
    if value is None:
        return GREY
    if value >= 99.9:
        return "#2e7d32"
    if value >= 99.0:
        return "#558b2f"
    if value >= 95.0:
        return "#b26a00"
    return "#c62828"


def uptime_text(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


def uptime_badge(label: str, value: float | None) -> str:
    return badge(label, uptime_text(value), uptime_color(value))


def rss(
    *, title: str, link: str, description: str, incidents: list[PublicIncident], base: str
) -> str:
    """An RSS 2.0 feed of incidents, newest first."""
    items = []
    for i in incidents:
        body = i.description or (i.updates[0].message if i.updates else i.title)
        when = i.updates[0].created_at if i.updates else i.started_at
        items.append(
            "<item>"
            f"<title>{escape(i.title)} [{escape(i.status)}]</title>"
            f"<link>{escape(f'{link}/incidents/{i.id}')}</link>"
            f'<guid isPermaLink="false">{escape(str(i.id))}</guid>'
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(body)}</description>"
            "</item>"
        )
    updated = max((i.started_at for i in incidents), default=None)
    last = f"<lastBuildDate>{format_datetime(updated)}</lastBuildDate>" if updated else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>{escape(title)}</title>"
        f"<link>{escape(link)}</link>"
        f"<description>{escape(description or title)}</description>"
        f'<atom:link href={quoteattr(base)} rel="self" type="application/rss+xml"/>'
        f"{last}{''.join(items)}</channel></rss>\n"
    )


def latency_chart(points: list[SharedLatencyPoint], width: int = 640, height: int = 180) -> str:
    """An inline SVG line chart of p50 and p95 latency (ms), drawn on the server."""
    pad_l, pad_r, pad_t, pad_b = 44, 8, 10, 22
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            'role="img" aria-label="No latency data in the last 24 hours" class="chart">'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            'fill="currentColor">No latency data yet</text></svg>'
        )
    values = [v for p in points for v in (p.p50, p.p95) if v is not None]
    top = max(values) if values else 1.0
    top = max(top * 1.1, 1.0)
    t0 = points[0].at.timestamp()
    t1 = max(points[-1].at.timestamp(), t0 + 1)
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(at: datetime, v: float) -> str:
        x = pad_l + (at.timestamp() - t0) / (t1 - t0) * inner_w
        y = pad_t + inner_h - v / top * inner_h
        return f"{x:.1f},{y:.1f}"

    def line(attr: str, cls: str) -> str:
        pts = [xy(p.at, getattr(p, attr)) for p in points if getattr(p, attr) is not None]
        return f'<polyline class="{cls}" fill="none" stroke-width="2" points="{" ".join(pts)}"/>'

    last = points[-1]
    summary = f"Latency over the last 24 hours; latest p50 {last.p50 or 0:.0f} ms"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label={quoteattr(summary)} class="chart">'
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" '
        f'y2="{pad_t + inner_h}" stroke="currentColor" stroke-opacity="0.3"/>'
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" font-size="10" '
        f'fill="currentColor">{top:.0f} ms</text>'
        f'<text x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end" font-size="10" '
        'fill="currentColor">0</text>'
        f"{line('p95', 'p95')}{line('p50', 'p50')}"
        f'<text x="{pad_l}" y="{height - 6}" font-size="10" fill="currentColor">'
        "24 h ago</text>"
        f'<text x="{width - pad_r}" y="{height - 6}" text-anchor="end" font-size="10" '
        'fill="currentColor">now</text></svg>'
    )
