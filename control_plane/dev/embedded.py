"""PostgreSQL and Redis started by the project itself in a local folder.

Used by ``vigil dev`` and by the test suite when no URL is configured. PostgreSQL comes from the
system binaries (``/usr/lib/postgresql/*/bin``, or ``VIGIL_PG_BIN``); as root it runs as the
``postgres`` user. Ports are picked free; a data folder that already holds a running server is
reused as it is.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class MissingBinary(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie (exited, not yet reaped by a parent that never will, as
    under a container init that does not reap) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    # "pid (comm) STATE ...": comm may hold spaces and parentheses, so split at the last ')'.
    return stat.rpartition(")")[2].split()[0] != "Z"


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now. Servers (uvicorn, PostgreSQL, Redis) bind
    with SO_REUSEADDR, so a port whose last connections linger in TIME-WAIT after a quick restart
    is free for them: probe the same way, or a second ``make dev`` would move to other ports."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _has_pg_tools(folder: str | Path) -> bool:
    return (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists()


def pg_bin_dir() -> Path:
    explicit = os.environ.get("VIGIL_PG_BIN")
    if explicit:
        # Named on purpose: a wrong folder is an error, not a reason to look elsewhere.
        if not _has_pg_tools(explicit):
            raise MissingBinary(
                f"VIGIL_PG_BIN={explicit!r} holds no initdb and pg_ctl; point it at the folder of "
                "PostgreSQL's server binaries (e.g. /usr/lib/postgresql/15/bin) or unset it"
            )
        return Path(explicit)
    candidates: list[str] = []

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for c in candidates:
        if c and _has_pg_tools(c):
            return Path(c)
    raise MissingBinary(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with "
        "`apt-get install postgresql` (Debian/Ubuntu) or `brew install postgresql` (macOS), "
        "set VIGIL_PG_BIN to their folder, or set VIGIL_DATABASE_URL to an existing server."
    )


def redis_server_bin() -> str:
    explicit = os.environ.get("VIGIL_REDIS_SERVER")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise MissingBinary(
                f"VIGIL_REDIS_SERVER={explicit!r} is not an executable file; point it at "
                "redis-server or unset it"
            )
        return explicit
    found = shutil.which("redis-server")
    if not found:
        raise MissingBinary(
            "redis-server was not found. Install it with `apt-get install redis-server` "
            "(Debian/Ubuntu) or `brew install redis` (macOS), or set VIGIL_REDIS_URL to an "
            "existing server."
        )
    return found


def _as_postgres() -> tuple[list[str], int | None, int | None]:
    """Command prefix and uid/gid to run PostgreSQL tools: as root they must run as ``postgres``."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise MissingBinary(
            "running as root needs a `postgres` system user for the embedded "
            "PostgreSQL (it comes with `apt-get install postgresql`)"
        ) from None
    runuser = shutil.which("runuser")
    prefix = (
        [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]
    )
    return prefix, pw.pw_uid, pw.pw_gid


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    fast: bool = False  # fsync off: for throwaway test clusters
    port: int = 0
    # More ``name=value`` server settings (the bench's autovacuum_naptime, as README advises).
    settings: tuple[str, ...] = ()
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        prefix, _, _ = _as_postgres()
        cmd = prefix + args
        if prefix and prefix[0] == "su":
            cmd = [*prefix, shlex.join(args)]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def _running_port(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        status = self._run([str(pg_bin_dir() / "pg_ctl"), "status", "-D", str(self.data_dir)])
        if status.returncode != 0:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].isdigit() else None

    def start(self) -> str:
        bindir = pg_bin_dir()
        _, uid, gid = _as_postgres()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if uid is not None and self._run(["test", "-x", str(self.data_dir.parent)]).returncode:
            raise RuntimeError(
                f"the postgres user cannot reach {self.data_dir.parent}: PostgreSQL runs as "
                "`postgres` when started as root, so every folder above its data must be "
                "searchable by others (chmod o+x), or choose another folder"
            )
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if uid is not None and gid is not None:
                os.chown(self.data_dir, uid, gid)
            os.chmod(self.data_dir, 0o700)
            init = self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            )
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        running = self._running_port()
        if running:
            self.port = running
            return self.url
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        self.log_file.touch()
        if uid is not None and gid is not None:
            os.chown(self.log_file, uid, gid)
        opts = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=300",
        ]
        if self.fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        opts += [f"-c {setting}" for setting in self.settings]
        started = self._run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                " ".join(opts),
            ]
        )
        if started.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{tail}")
        return self.url

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                [str(pg_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
            )


@dataclass
class EmbeddedRedis:
    data_dir: Path
    persist: bool = True
    port: int = 0

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        running = self._running()
        return running[0] if running else None

    def _running(self) -> tuple[int, int] | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int((self.data_dir / "redis.port").read_text().strip())
        except (OSError, ValueError):
            return None
        return (pid, port) if pid_alive(pid) else None

    def start(self) -> str:
        binary = redis_server_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = self._running()
        if running:
            self.port = running[1]
            return self.url
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        (self.data_dir / "redis.port").write_text(str(self.port))
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pid_file),
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--protected-mode",
            "yes",
        ]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-server did not start: {done.stderr or done.stdout}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        running = self._running()
        if running:
            os.kill(running[0], signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not pid_alive(running[0]):
                    return
                time.sleep(0.05)
