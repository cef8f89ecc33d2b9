"""The dev stack's child processes: started in their own session, their output printed line by
line behind their name, stopped in reverse order on Ctrl-C; a child that dies stops everything."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

# Covers an API that finishes a lease long-poll (up to 30 s) before it exits.
STOP_TIMEOUT_S = 40.0


class DevError(RuntimeError):
    """Something the user has to fix; printed as one message, without a traceback."""


class ChildDied(DevError):
    pass


class _Stop(BaseException):
    """Raised by the SIGINT/SIGTERM handler to unwind to the cleanup (like KeyboardInterrupt)."""


class Output:
    """Serialised line output: every line is written whole, behind its source's name."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def line(self, source: str, text: str) -> None:
        self.raw(f"{source:>6} | {text}")

    def say(self, text: str) -> None:
        self.line("dev", text)

    def raw(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


class Signals:
    """SIGINT/SIGTERM raise ``_Stop``, except inside ``deferred()`` blocks and once stopping."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False
        self.stopping = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        if self.depth:
            self.pending = True
            return
        self.stopping = True
        raise _Stop

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending and not self.stopping:
                self.stopping = True
                raise _Stop


def _command(script: str, module: str) -> list[str]:
    """The console script next to this interpreter, or the same entry point through it."""
    exe = Path(sys.executable).parent / script
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


class Children:
    def __init__(self, out: Output, signals: Signals) -> None:
        self.out = out
        self.signals = signals
        self.items: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with self.signals.deferred():
            # Own session: a Ctrl-C in the terminal reaches only us, and we stop children in order.
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
            self.items.append(Child(name, proc, pump))
        pump.start()
        shown = [Path(argv[0]).name, *argv[1:]]
        self.out.say(f"started {name} (pid {proc.pid}): {shlex.join(shown)}")

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.out.line(name, raw.decode(errors="replace").rstrip("\r\n"))

    def check(self) -> None:
        for child in self.items:
            code = child.proc.poll()
            if code is not None:
                raise ChildDied(f"{child.name} exited with code {code}; stopping everything")

    def stop_all(self) -> None:
        for child in reversed(self.items):
            if child.proc.poll() is None:
                _killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in reversed(self.items):
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out.say(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
                _killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
            _killpg(child.proc.pid, signal.SIGKILL)  # anything it left behind in its group
        for child in self.items:
            child.pump.join(timeout=5)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
