"""Swagger UI at ``/docs``, every asset served by us (no CDN), loading ``/api/openapi.json``.

The assets come from the ``swagger_ui_bundle`` package (Swagger UI 5, which renders OpenAPI 3.1).
Only the files the page needs are served, from ``/docs/static/<name>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import File
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
STATIC_PATH = f"{DOCS_PATH}/static"
ASSET_DIR = Path(str(swagger_ui_path))
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# The page loads only our own origin; Swagger UI styles inline and draws icons from data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Vigil API</title>
    <link rel="stylesheet" href="{STATIC_PATH}/swagger-ui.css">
    <link rel="stylesheet" href="{STATIC_PATH}/index.css">
    <link rel="icon" type="image/png" href="{STATIC_PATH}/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="{STATIC_PATH}/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{STATIC_PATH}/swagger-ui-bundle.js"></script>
    <script src="{DOCS_PATH}/init.js"></script>
  </body>
</html>
"""

_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def openapi_url(request: Request[Any, Any, Any]) -> str:
    config = request.app.openapi_config
    base = (config.path if config and config.path else "/schema").rstrip("/")
    return f"{base}/openapi.json"


@get(DOCS_PATH, include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def swagger_ui() -> Response[str]:
    """The Swagger UI page."""
    return Response(PAGE, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@get(f"{DOCS_PATH}/init.js", include_in_schema=False, sync_to_thread=False)
def swagger_ui_init(request: Request[Any, Any, Any]) -> Response[str]:
    """Starts Swagger UI on our OpenAPI document (a file, so the page needs no inline script)."""
    return Response(
        _INIT % json.dumps(openapi_url(request)),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


@get(f"{STATIC_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def swagger_ui_asset(name: FromPath[str]) -> File:
    """One Swagger UI asset from the installed bundle."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException()
    return File(
        ASSET_DIR / name,
        media_type=media_type,
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def docs_handlers() -> list[HTTPRouteHandler]:
    return [swagger_ui, swagger_ui_init, swagger_ui_asset]
