"""Who wrote a pending lease, and whether that writer is still running.

An ADD writes its leases as *pending* and marks them complete when it has its result
(see :mod:`ipam.allocator`). If a later ADD for the same attachment finds pending leases,
it must tell "that ADD crashed" (adopt the leases) from "that ADD is still running"
(try again later). A PID alone cannot tell: PIDs are reused. The owner token is
``pid:starttime:nonce``: the start time (field 22 of /proc/PID/stat, in clock ticks since
boot) pins the process, the nonce tells two ADDs of one long-lived process apart.
"""

from __future__ import annotations

import os


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` from /proc, or None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (state); the start time is field 22. A zombie has exited:
    # it is dead for our purpose even though its parent has not reaped it yet.
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def new_owner() -> str:
    """A token for one ADD run by this process."""
    return f"{os.getpid()}:{_start_time(os.getpid()) or 0}:{os.urandom(4).hex()}"


def owner_alive(owner: str) -> bool:
    """True while the process that made ``owner`` still runs (an unparsable token is dead)."""
    pid_text, _, rest = owner.partition(":")
    start = rest.partition(":")[0]
    if not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == start
