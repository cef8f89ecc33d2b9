"""``dev.env``: the local stack's secrets and demo credentials, and the children's environment."""

from __future__ import annotations

import base64
import os
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# Keys of dev.env beyond the settings variables.
ORG_ID = "VIGIL_DEV_ORG_ID"
API_TOKEN = "VIGIL_DEV_API_TOKEN"
AGENT_TOKEN = "VIGIL_DEV_AGENT_TOKEN"
PG_PORT = "VIGIL_DEV_PG_PORT"
REDIS_PORT = "VIGIL_DEV_REDIS_PORT"
API_URL = "VIGIL_DEV_API_URL"
# The embedded servers' URLs, under the names the CLI reads: sourcing dev.env (or
# ``eval "$(vigil dev env)"``) lets ``vigil org create`` and friends reach the dev stack.
DB_URL = "VIGIL_DATABASE_URL"
REDIS_URL = "VIGIL_REDIS_URL"


def dev_dir() -> Path:
    return Path(os.environ.get("VIGIL_DEV_DIR") or Path.cwd() / ".vigil" / "dev").resolve()


@dataclass
class DevFile:
    path: Path
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DevFile:
        values: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                key, sep, value = line.strip().partition("=")
                if sep and key and not key.startswith("#"):
                    values[key] = value
        return cls(path, values)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# Written by `vigil dev`: this stack's secrets and demo credentials.\n")
            f.write("# Keep it private. Delete the folder to start from scratch.\n")
            f.writelines(f"{k}={v}\n" for k, v in self.values.items())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def _key32() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_secrets(values: dict[str, str]) -> bool:
    """Generate the secrets ``values`` lacks; True when something was generated."""
    before = len(values)
    values.setdefault("VIGIL_TOKEN_KEY", _key32())
    if "VIGIL_SECRET_KEYS" not in values:
        values["VIGIL_SECRET_KEYS"] = f"dev1:{_key32()}"
        values["VIGIL_SECRET_PRIMARY"] = "dev1"
    values.setdefault("VIGIL_OPERATOR_ADMIN_TOKEN", "op_" + secrets.token_urlsafe(32))
    return len(values) != before


def child_env(values: dict[str, str], db_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every child: the caller's, completed from dev.env."""
    env = dict(os.environ)
    if not env.get("VIGIL_SECRET_KEYS"):
        # The key list and its primary id come as a pair, from one place.
        env["VIGIL_SECRET_KEYS"] = values["VIGIL_SECRET_KEYS"]
        env.pop("VIGIL_SECRET_PRIMARY", None)
        if values.get("VIGIL_SECRET_PRIMARY"):
            env["VIGIL_SECRET_PRIMARY"] = values["VIGIL_SECRET_PRIMARY"]
    for key in ("VIGIL_TOKEN_KEY", "VIGIL_OPERATOR_ADMIN_TOKEN"):
        if not env.get(key):
            env[key] = values[key]
    env["VIGIL_DATABASE_URL"] = db_url
    env["VIGIL_REDIS_URL"] = redis_url
    # Alerts may go to a receiver on this machine (a local webhook listener).
    env.setdefault("VIGIL_NOTIFY_ALLOW_PRIVATE", "true")
    env["PYTHONUNBUFFERED"] = "1"
    # The dev API is plain http on this machine: a Secure session cookie would never come back.
    env.setdefault("VIGIL_COOKIE_SECURE", "false")
    return env


def shell_exports(values: dict[str, str]) -> list[str]:
    """``export`` lines for a shell: the settings the CLI reads, and the README's shorthands
    (``$VIGIL``, ``$TOKEN``, ``$OPERATOR``)."""
    shorthands = {
        "VIGIL": values.get(API_URL),
        "TOKEN": values.get(API_TOKEN),
        "OPERATOR": values.get("VIGIL_OPERATOR_ADMIN_TOKEN"),
    }
    pairs = [(k, v) for k, v in values.items() if k.startswith("VIGIL_")]
    pairs += [(k, v) for k, v in shorthands.items() if v]
    return [f"export {k}={shlex.quote(v)}" for k, v in pairs]
