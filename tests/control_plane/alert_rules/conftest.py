from tests.control_plane.notifications.conftest import env

__all__ = ["env"]
