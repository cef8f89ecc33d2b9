"""On-demand checks: ``POST /targets/test`` and ``POST /targets/{id}/check-now``."""
