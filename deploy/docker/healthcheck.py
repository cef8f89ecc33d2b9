"""The container's HEALTHCHECK: one image runs every Vigil process, so this looks at what PID 1
is and asks that process.

- ``vigil serve``: GET /healthz on VIGIL_PORT (liveness; readiness is the orchestrator's /readyz).
- ``vigil worker`` / ``vigil-agent`` with a metrics port: GET /metrics on it.
- anything else (``vigil migrate``, a worker or agent without metrics): healthy while it runs.

Exit 0 healthy, 1 unhealthy. Standard library only.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def command_line() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            return [p.decode(errors="replace") for p in f.read().split(b"\0") if p]
    except OSError:
        return []


def flag(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def url_for(argv: list[str]) -> str | None:
    words = [os.path.basename(a) for a in argv]
    # Under an init (docker --init, `sh -c "… exec vigil-agent"`) the command is further in.
    if any("vigil-agent" in a for a in argv):
        port = flag(argv, "--metrics-port") or os.environ.get("VIGIL_AGENT_METRICS_PORT")
        return f"http://127.0.0.1:{port}/metrics" if port else None
    if "vigil" in words:
        rest = argv[words.index("vigil") + 1 :]
        if "serve" in rest:
            port = flag(rest, "--port") or os.environ.get("VIGIL_PORT", "8000")
            return f"http://127.0.0.1:{port}/healthz"
        if "worker" in rest:
            port = flag(rest, "--metrics-port") or os.environ.get("VIGIL_WORKER_METRICS_PORT")
            return f"http://127.0.0.1:{port}/metrics" if port else None
    return None


def main() -> int:
    url = url_for(command_line())
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except Exception as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
