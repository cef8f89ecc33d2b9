"""What the templates are given: plain dicts and lists built from the public wire types only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from control_plane.domain.status_pages.validation import sanitize_css

from . import render
from .schemas import PublicDay, PublicIncident, SharedMonitor, Snapshot

HEADLINES = {
    "operational": "All systems operational",
    "under_maintenance": "Maintenance in progress",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}
PHASES = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "postmortem": "Postmortem",
}


def when(value: datetime | None) -> dict[str, str] | None:
    """A time for ``<time datetime=…>``: ISO in UTC plus a readable UTC fallback."""
    if value is None:
        return None
    return {
        "iso": value.isoformat().replace("+00:00", "Z"),
        "text": value.strftime("%Y-%m-%d %H:%M UTC"),
    }


def day_cell(day: PublicDay) -> dict[str, str]:
    v = day.uptime_pct
    if v is None:
        level, figure = "none", "no data"
    else:
        level = "ok" if v >= 99.9 else "minor" if v >= 99.0 else "warn" if v >= 95.0 else "bad"
        figure = render.uptime_text(v)
    return {"date": day.date, "level": level, "label": f"{day.date}: {figure}"}


def day_cells(days: list[PublicDay]) -> Markup:
    """The 90 cells of a bar as one escaped string: a page of 50 components has 4,500 of them,
    which a template loop renders ~10x slower."""
    out = []
    for d in days:
        cell = day_cell(d)
        label = escape(cell["label"])
        out.append(
            f'<li class="{cell["level"]}" tabindex="0" title="{label}" aria-label="{label}" '
            f'data-label="{label}"></li>'
        )
    return Markup("".join(out))


def incident_view(i: PublicIncident, slug: str) -> dict[str, Any]:
    return {
        "id": str(i.id),
        "url": f"/status/{slug}/incidents/{i.id}",
        "title": i.title,
        "description": i.description,
        "status": i.status,
        "status_label": PHASES[i.status],
        "impact": i.impact,
        "started": when(i.started_at),
        "resolved": when(i.resolved_at),
        "components": [c.name for c in i.components],
        "updates": [
            {"phase": PHASES[u.phase], "message": u.message, "at": when(u.created_at)}
            for u in i.updates
        ],
    }


def _page(snap: Snapshot) -> dict[str, Any]:
    page = snap.status.page
    return {
        "name": page.name,
        "slug": page.slug,
        "description": page.description,
        "brand_color": page.brand_color,
        "logo_url": page.logo_url,
        "css": sanitize_css(snap.custom_css),
        "hide_branding": snap.hide_branding,
        "rss": f"/api/public/v1/pages/{page.slug}/incidents.rss",
    }


def status_context(snap: Snapshot) -> dict[str, Any]:
    st = snap.status
    groups: list[dict[str, Any]] = []
    index: dict[str | None, dict[str, Any]] = {}
    for c in st.components:
        group = index.get(c.group)
        if group is None:
            group = {"name": c.group, "components": []}
            index[c.group] = group
            groups.append(group)
        days = snap.history.get(str(c.id), [])
        group["components"].append(
            {
                "id": str(c.id),
                "name": c.name,
                "description": c.description,
                "status": c.status,
                "status_label": render.LABELS[c.status].capitalize(),
                "uptime": render.uptime_text(c.uptime_pct),
                "cells": day_cells(days),
                "first_day": days[0].date if days else "",
            }
        )
    return {
        "page": _page(snap),
        "status": st.status,
        "headline": HEADLINES[st.status],
        "groups": groups,
        "incidents": [incident_view(i, st.page.slug) for i in st.active_incidents],
        "maintenance": [
            {
                "title": m.title,
                "description": m.description,
                "status": m.status,
                "starts": when(m.starts_at),
                "ends": when(m.ends_at),
                "components": [c.name for c in m.components],
            }
            for m in st.maintenance
        ],
        "generated": when(st.generated_at),
    }


def incident_context(snap: Snapshot, incident: PublicIncident) -> dict[str, Any]:
    return {"page": _page(snap), "incident": incident_view(incident, snap.status.page.slug)}


def share_context(m: SharedMonitor) -> dict[str, Any]:
    return {
        "page": None,
        "name": m.name,
        "kind": m.kind,
        "status": m.status,
        "status_label": render.LABELS[m.status].capitalize(),
        "uptime": {
            "24 hours": render.uptime_text(m.uptime_24h),
            "7 days": render.uptime_text(m.uptime_7d),
            "30 days": render.uptime_text(m.uptime_30d),
        },
        "chart": render.latency_chart(m.latency),
        "days": [day_cell(d) for d in m.days],
        "incidents": [
            {
                "title": i.title,
                "status_label": PHASES[i.status],
                "started": when(i.started_at),
                "resolved": when(i.resolved_at),
            }
            for i in m.incidents
        ],
    }
