"""The Vigil probe agent: leases due checks from the control plane, runs them, ships results.

It knows only the control plane's URL and its agent token, holds no database, and speaks the
wire types in ``shared``. It never imports ``control_plane``.
"""

__version__ = "0.1.0"
USER_AGENT = f"vigil-agent/{__version__}"
