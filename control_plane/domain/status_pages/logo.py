"""A page's logo from a multipart upload: at most 256 KiB, a PNG, JPEG, GIF or WebP image, its
type decided from its bytes (never from what the client claims). SVG is refused: served from
this origin it could carry script."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from control_plane.core.errors import ApiError

MAX_LOGO_BYTES = 256 * 1024
FIELD = "file"


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` by its magic number, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def too_large() -> ApiError:
    return ApiError(
        413,
        "LOGO_TOO_LARGE",
        f"the logo must be at most {MAX_LOGO_BYTES} bytes",
        f"/{FIELD}",
        details={"max_bytes": MAX_LOGO_BYTES},
    )


async def read_logo(request: Request[Any, Any, Any]) -> tuple[bytes, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "upload the logo as multipart/form-data with the image in the 'file' field",
            details={"accepted": ["multipart/form-data"]},
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_LOGO_BYTES + 16 * 1024:
        raise too_large()
    try:
        form = await request.form()
    except Exception:
        raise ApiError(400, "INVALID_MULTIPART", "the multipart body could not be read") from None
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "MISSING_FIELD", "the image goes in the 'file' field", f"/{FIELD}")
    data = await upload.read(MAX_LOGO_BYTES + 1)
    if len(data) > MAX_LOGO_BYTES:
        raise too_large()
    kind = sniff(data)
    if kind is None:
        raise ApiError(
            422,
            "UNSUPPORTED_LOGO_TYPE",
            "the logo must be a PNG, JPEG, GIF or WebP image",
            f"/{FIELD}",
            details={"accepted": ["image/png", "image/jpeg", "image/gif", "image/webp"]},
        )
    return data, kind


@dataclass
class LogoUploadOperation(Operation):
    """The upload's body in the document: the handler reads the form itself (not a JSON route)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            FIELD: Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                        },
                        required=[FIELD],
                    )
                )
            },
        )
