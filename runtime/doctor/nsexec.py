"""Do things inside another network namespace: this process enters it for a block
(setns(2)) and comes back, so doctor's reads and probes need no ``nsenter``, no second
interpreter and no text to parse back.

doctor is single-threaded: setns changes the calling thread only, and every socket, every
read under /proc/sys/net and every child process made inside the block belongs to the
namespace entered. Not pyroute2's ``pushns``: it creates a namespace that is missing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def inside(netns: str | None) -> Iterator[None]:
    """Run the block in the namespace at ``netns`` (where we are when None), then return.

    Raises:
        OSError: the namespace cannot be entered (gone, not a namespace, no privilege).
    """
    if not netns:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def sysctl(name: str) -> bool | None:
    """A 0/1 sysctl of the namespace we are in (``net/ipv4/ip_forward``); None when unreadable."""
    try:
        with open(f"/proc/sys/{name}") as fh:
            return {"0": False, "1": True}.get(fh.read().strip())
    except OSError:
        return None
