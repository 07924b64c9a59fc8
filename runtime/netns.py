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


def remove(path: str) -> None:
    """Unmount and delete a namespace file; absence is success."""
    if not os.path.exists(path):
        return
    subprocess.run(["umount", "-l", path], capture_output=True)
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
