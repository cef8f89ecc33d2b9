"""ASGI entry point for uvicorn: ``control_plane.asgi:app`` (settings from the environment).

Each uvicorn worker process imports this module, so logging is configured here too: every
worker writes the same JSON lines as the parent.
"""

from control_plane.app import create_app
from control_plane.core.logs import configure_logging
from control_plane.settings import get_settings

configure_logging(get_settings().api.log_level)
app = create_app()
