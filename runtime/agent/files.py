"""The agent's files under ``<run>/``: ``agent.pid``, ``agent.json`` (status), ``agent.log``.

Written atomically (temporary name + rename) by the agent; read by ``netctl agent
status|stop`` and by netctl when it decides whether to start one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from runtime.paths import Paths

PID = "agent.pid"
STATUS = "agent.json"
LOG = "agent.log"


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_pid(paths: Paths, pid: int) -> None:
    """Raises: OSError when the run directory is not writable."""
    _write(os.path.join(paths.run, PID), f"{pid}\n")


def read_pid(paths: Paths) -> int:
    """The recorded agent PID, 0 when none (or unreadable)."""
    try:
        with open(os.path.join(paths.run, PID)) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def write_status(paths: Paths, status: dict[str, Any]) -> None:
    try:
        _write(os.path.join(paths.run, STATUS), json.dumps(status, indent=1) + "\n")
    except OSError:
        pass  # status is best effort: never stop serving because /run is full


def read_status(paths: Paths) -> dict[str, Any] | None:
    try:
        with open(os.path.join(paths.run, STATUS)) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def clear(paths: Paths, pid: int) -> None:
    """Remove the pid and status files if they are ``pid``'s."""
    if read_pid(paths) != pid:
        return
    for name in (STATUS, PID):
        try:
            os.unlink(os.path.join(paths.run, name))
        except FileNotFoundError:
            pass


def is_agent(pid: int) -> bool:
    """Whether ``pid`` is a live agent process (a PID may have been reused)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    if state in ("Z", "X"):
        return False
    return any(argv[i:i + 2] == [b"-m", b"runtime.agent"] for i in range(len(argv))) or (
        b"netplugins.daemon" in argv)
