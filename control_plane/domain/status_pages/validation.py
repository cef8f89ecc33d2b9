"""What a status page and its components may hold."""

from __future__ import annotations

import re

from control_plane.core.errors import ApiError
from control_plane.core.text import clean_text

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_CSS = 20_000
MAX_DESCRIPTION = 500
MAX_COMPONENT_DESCRIPTION = 1000


def name(value: str) -> str:
    return clean_text(value, field="/name", code="INVALID_NAME", max_len=100)


def slug(value: str) -> str:
    if not SLUG.match(value):
        raise ApiError(
            400,
            "INVALID_SLUG",
            "slug must be 1 to 50 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit",
            "/slug",
        )
    return value


def long_text(value: str, *, field: str, code: str, max_len: int) -> str:
    if len(value) > max_len or "\x00" in value:
        raise ApiError(
            400, code, f"{field[1:]} must be at most {max_len} characters, no NUL", field
        )
    return value


def description(value: str) -> str:
    return long_text(
        value, field="/description", code="INVALID_DESCRIPTION", max_len=MAX_DESCRIPTION
    ).strip()


def brand_color(value: str | None) -> str | None:
    if value is not None and not COLOR.match(value):
        raise ApiError(
            400, "INVALID_BRAND_COLOR", "brand_color must be a colour as #rrggbb", "/brand_color"
        )
    return value


def sanitize_css(css: str) -> str:
    """CSS that cannot leave the ``<style>`` element it is rendered into.

    Only ``</style`` ends a style element, so no ``<`` may reach the page: it is written as the
    CSS escape ``\\3c `` (the same character inside a CSS string, an inert one elsewhere, where
    CSS has no use for it). NULs are dropped. Idempotent.
    """
    return css.replace("\x00", "").replace("<", "\\3c ")


def custom_css(value: str) -> str:
    if len(value) > MAX_CSS:
        raise ApiError(
            400,
            "INVALID_CUSTOM_CSS",
            f"custom_css must be at most {MAX_CSS} characters",
            "/custom_css",
        )
    return sanitize_css(value)


def public_name(value: str | None) -> str | None:
    if value is None:
        return None
    return clean_text(value, field="/public_name", code="INVALID_PUBLIC_NAME", max_len=200)


def public_group(value: str | None) -> str | None:
    if value is None:
        return None
    return clean_text(
        value, field="/public_group", code="INVALID_PUBLIC_GROUP", max_len=100, label="group"
    )


def public_description(value: str | None) -> str | None:
    if value is None:
        return None
    return long_text(
        value,
        field="/public_description",
        code="INVALID_PUBLIC_DESCRIPTION",
        max_len=MAX_COMPONENT_DESCRIPTION,
    ).strip()


def sort_order(value: int) -> int:
    if not -1_000_000 <= value <= 1_000_000:
        raise ApiError(
            400,
            "INVALID_SORT_ORDER",
            "sort_order must be between -1000000 and 1000000",
            "/sort_order",
        )
    return value
