"""Container network namespaces, bind-mounted under <run>/netns/<container id>."""

from __future__ import annotations

import os
import subprocess

from .errors import NetctlError


def create(path: str) -> None:
    """A new, empty network namespace kept alive by a bind mount at ``path``.

    Raises:
        NetctlError: when it cannot be made.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w"):
        pass
    proc = subprocess.run(["unshare", f"--net={path}", "true"], capture_output=True, text=True)
    if proc.returncode != 0:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise NetctlError(f"failed to create a network namespace: {proc.stderr.strip()}")


MNT_DETACH = 2


def remove(path: str) -> None:
    """Lazily unmount and delete a namespace file; absence is success.

    umount2(2) through libc rather than ``umount -l``: one process less on every
    container removal. EINVAL (not a mount point) is expected after a crash half-way.
    """
    if not os.path.exists(path):
        return
    # lazy: ~2 ms of netctl start-up; only this call needs it
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(os.fsencode(path), MNT_DETACH)
    try:
        os.unlink(path)
    except OSError:
        pass


def is_mounted(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as fh:
            return any(line.split()[4] == path for line in fh)
    except OSError:
        return False
