"""Child processes of the test servers: started in their own session, stopped as a group.

Every server (gunicorn and its workers, node) runs in a new session under a small supervisor
(``_SUPERVISOR``), so that stopping it signals the whole process group, and so that the whole
group dies with the Python process that started it even when that process is killed without
running its clean-up (``kill -9`` of pytest, a CI timeout). Servers still running when the
interpreter exits normally are stopped by an ``atexit`` hook.

The parent-death signal is tied to the thread that started the process: start servers from a
thread that outlives them (the main thread, as pytest fixtures do).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "ServerProcess",
    "free_port",
    "group_members",
    "run_checked",
    "wait_group_gone",
    "wait_until",
]

# The first process of every server's group: a few lines of Python that run the real command as
# their child and wait for it. The kernel sends them SIGUSR1 when the process that started the
# server dies (PR_SET_PDEATHSIG, even after a SIGKILL that runs no clean-up), and they then
# SIGKILL their whole process group: gunicorn's master and workers, node, anything they spawned.
# A SIGTERM to the group (a normal stop) reaches the command directly; they just wait for it.
_SUPERVISOR = """\
import ctypes, os, signal, subprocess, sys
def orphaned(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGUSR1, orphaned)
signal.signal(signal.SIGTERM, lambda *_: None)
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGUSR1)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    orphaned()  # the starter died before prctl
code = subprocess.call(sys.argv[2:])
sys.exit(code if code >= 0 else 128 - code)
"""

_running: set[ServerProcess] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a clash)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    log: Path | None = None,
) -> None:
    """Poll ``ready`` until it is true; raise with the tail of ``log`` when ``alive`` turns
    false or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if not alive():
            raise RuntimeError(f"{what} exited before it was ready{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s{_tail(log)}")
        time.sleep(0.1)


def _tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


def run_checked(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    what: str,
    timeout: float,
) -> str:
    """Run a one-off command under the same supervisor; its stdout, or a RuntimeError with the
    end of its output when it fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SUPERVISOR, str(os.getpid()), *argv],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-30:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n" + "\n".join(output))
    return done.stdout


class ServerProcess:
    """A long-running server process with its output in ``log``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        name: str,
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self._popen = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, str(os.getpid()), *argv],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.add(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; idempotent.

        The group is signalled even when the leader has exited, so that no worker outlives it.
        """
        _running.discard(self)
        if self._popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(grace)
        _signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(5)


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_group_gone(pgid: int, timeout: float = 10.0) -> list[int]:
    """Wait until process group ``pgid`` has no live member; the survivors after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _stop_all() -> None:
    for process in list(_running):
        process.stop(grace=3.0)
