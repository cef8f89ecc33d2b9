"""Compose bootstrap: regions and one agent per region, through the operator API.

Environment:
  VIGIL_BOOTSTRAP_URL          the control plane (default http://proxy)
  VIGIL_OPERATOR_ADMIN_TOKEN   the operator bearer secret
  VIGIL_BOOTSTRAP_REGIONS      "id:Name,id:Name" (default "eu-west:EU West,us-east:US East")
  VIGIL_BOOTSTRAP_DIR          where each agent's token is written as <region>.token

Idempotent: a region that exists is kept (409), and a region whose token file exists gets no new
agent. Exit 0 done, 1 failed. Standard library only (it runs in the Vigil image).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 120.0


def call(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def wait_ready(base: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bootstrap: {base}/readyz did not answer 200 in {timeout_s:.0f}s")
        time.sleep(2)


def parse_regions(raw: str) -> list[tuple[str, str]]:
    regions = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        rid, _, name = part.partition(":")
        regions.append((rid.strip(), (name or rid).strip()))
    return regions


def bootstrap(base: str, token: str, regions: list[tuple[str, str]], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for rid, name in regions:
        status, body = call(base, token, "POST", "/operator/regions", {"id": rid, "name": name})
        if status not in (201, 409):
            print(f"bootstrap: region {rid}: {status} {body}", file=sys.stderr)
            return 1
        print(f"region {rid}: {'created' if status == 201 else 'exists'}")
        path = out / f"{rid}.token"
        if path.exists() and path.read_text().strip():
            print(f"agent of {rid}: token already in {path}")
            continue
        status, body = call(
            base, token, "POST", "/operator/agents", {"name": f"{rid}-1", "region": rid}
        )
        if status != 201:
            print(f"bootstrap: agent of {rid}: {status} {body}", file=sys.stderr)
            return 1
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body["token"])
        tmp.chmod(0o600)
        tmp.replace(path)
        print(f"agent of {rid}: created {body['id']}, token in {path}")
    return 0


def main() -> int:
    token = os.environ.get("VIGIL_OPERATOR_ADMIN_TOKEN", "")
    if not token:
        print("bootstrap: VIGIL_OPERATOR_ADMIN_TOKEN is not set", file=sys.stderr)
        return 1
    base = os.environ.get("VIGIL_BOOTSTRAP_URL", "http://proxy").rstrip("/")
    regions = parse_regions(
        os.environ.get("VIGIL_BOOTSTRAP_REGIONS", "eu-west:EU West,us-east:US East")
    )
    wait_ready(base)
    return bootstrap(
        base, token, regions, Path(os.environ.get("VIGIL_BOOTSTRAP_DIR", "/bootstrap"))
    )


if __name__ == "__main__":
    sys.exit(main())
