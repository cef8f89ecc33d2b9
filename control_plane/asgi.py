"""ASGI entry point for uvicorn: ``control_plane.asgi:app`` (settings from the environment)."""

from control_plane.app import create_app

app = create_app()
