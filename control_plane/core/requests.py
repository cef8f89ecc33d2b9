"""Request helpers shared by route handlers."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

from litestar import Request

from control_plane.core.decoding import decode_body
from control_plane.core.errors import ApiError
from control_plane.core.ids import parse_uuid

T = TypeVar("T")
_TERRAFORM = re.compile(r"terraform", re.IGNORECASE)


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """Decode the body strictly (no "60" -> 60 coercion), whatever Litestar already accepted."""
    result: T = decode_body(await request.body(), type_)
    return result


def write_source(request: Request[Any, Any, Any]) -> str:
    """Where a write came from, decided from the request and never from the body."""
    if _TERRAFORM.search(request.headers.get("user-agent", "")):
        return "terraform"
    if request.headers.get("x-vigil-client", "").lower() == "ui":
        return "ui"
    return "api"


def query_text(value: str | None, name: str, max_len: int = 200) -> str | None:
    """A free-text query parameter: no NUL (no text column can hold one), bounded length."""
    if value is None:
        return None
    if "\x00" in value or len(value) > max_len:
        raise ApiError(
            400,
            "INVALID_QUERY_PARAM",
            f"{name} must be at most {max_len} characters with no NUL",
            f"/{name}",
        )
    return value


def path_uuid(value: str, not_found: ApiError) -> uuid.UUID:
    """A malformed id names no resource: answer the resource's 404, not a 400."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise not_found
    return parsed
