"""Start, stop and look at the agent from netctl (``netctl agent start|stop|status``).

netctl starts one itself (:func:`start` without waiting) when a command needs plugins and
none listens, so the plugin calls of a host without a service manager are served warm
too. The check-and-start happens under ``<run>/agent.lock``, so concurrent netctl
commands start one agent, not several.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from runtime.paths import Paths

from . import files

START_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0


def listening(sock: str) -> bool:
    """Whether something accepts connections on the Unix socket ``sock``."""
    if not os.path.exists(sock):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(sock)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def running_pid(paths: Paths) -> int:
    """The live agent's PID, 0 when none runs for this state directory."""
    pid = files.read_pid(paths)
    return pid if files.is_agent(pid) else 0


def start(paths: Paths, *, socket_path: str | None = None, wait: bool = True,
          exit_when_idle: float = 0.0, timeout: float = START_TIMEOUT,
          store: str | None = None) -> tuple[int, bool]:
    """Start a detached agent unless one runs; (its PID, whether we started it).

    With ``wait``, return once it accepts plugin calls.

    Raises:
        OSError: it could not be started, or exited during start-up (its log's last
            lines in the message), or did not listen within ``timeout``.
    """
    sock = socket_path or paths.plugind_socket
    os.makedirs(paths.run, mode=0o755, exist_ok=True)
    fd = os.open(os.path.join(paths.run, "agent.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        pid = running_pid(paths)
        if pid:
            return pid, False
        if listening(sock):
            return 0, False  # another kind of server (e.g. systemd's socket): not ours to start
        argv = [sys.executable, "-I", "-m", "runtime.agent", "run", "--socket", sock,
                "--root-lib", paths.lib, "--root-run", paths.run,
                "--exit-when-idle", f"{exit_when_idle:g}"]
        if store:
            argv += ["--store", store]
        with open(os.path.join(paths.run, files.LOG), "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    cwd="/", start_new_session=True, close_fds=True)
        files.write_pid(paths, proc.pid)
    finally:
        os.close(fd)
    if wait:
        deadline = time.monotonic() + timeout
        while not listening(sock):
            if proc.poll() is not None:
                raise OSError(f"the agent exited during start-up: {log_tail(paths)}")
            if time.monotonic() > deadline:
                raise OSError(f"the agent (pid {proc.pid}) does not listen on {sock} after "
                              f"{timeout:.0f}s: {log_tail(paths)}")
            time.sleep(0.02)
    return proc.pid, True


def stop(paths: Paths, *, timeout: float = STOP_TIMEOUT,
         progress: Callable[[str], None] | None = None) -> int:
    """Stop the agent (and the dnsd it supervises); its PID, 0 when none ran.

    Busy workers finish their plugin call first; after ``timeout`` seconds the agent is
    killed. ``progress`` is told what is being waited for.
    """
    pid = running_pid(paths)
    if not pid:
        files.clear(paths, files.read_pid(paths))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    told = False
    while files.is_agent(pid):
        if not told and progress is not None and time.monotonic() > deadline - timeout + 1.0:
            progress(f"waiting for the agent (pid {pid}) to finish the plugin calls it is "
                     f"running and stop dnsd (up to {timeout:.0f}s)...")
            told = True
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        time.sleep(0.02)
    files.clear(paths, pid)
    return pid


def status(paths: Paths) -> dict[str, Any]:
    """What ``netctl agent status`` shows: running or not, and the agent's own report."""
    pid = running_pid(paths)
    out: dict[str, Any] = {"running": bool(pid), "pid": pid or None}
    report = files.read_status(paths) if pid else None
    if report and report.get("pid") == pid:
        out.update(report)
        out["running"] = True
        started = report.get("started")
        if isinstance(started, (int, float)):
            out["uptime_s"] = round(time.time() - started, 1)
    out.setdefault("socket", paths.plugind_socket)
    return out


def log_tail(paths: Paths, lines: int = 5) -> str:
    try:
        with open(os.path.join(paths.run, files.LOG), errors="replace") as fh:
            return " | ".join(fh.read().splitlines()[-lines:])
    except OSError:
        return "(no log)"
