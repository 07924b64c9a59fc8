"""Network namespaces: validate a path, enter one for a block, compare two.

Namespace switching is per thread. These helpers are for single-threaded plugin
processes (or forked daemon workers); never use :func:`entered` in a threaded server.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..cni.errors import INVALID_NETNS, CniError

NS_GET_NSTYPE = 0xB703  # ioctl from linux/nsfs.h
CLONE_NEWNET = 0x40000000


_LIBC: list[object] = []


def _libc():  # type: ignore[no-untyped-def]
    """libc through ctypes, loaded once per process (a load costs ~0.5 ms)."""
    if not _LIBC:
        # lazy: ctypes ~2 ms a plugin process; only setns needs it
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def setns(fd: int, nstype: int) -> None:
    """setns(2): ``os.setns`` exists only from Python 3.12, so call libc on 3.11.

    Raises:
        OSError: with the kernel's errno.
    """
    if hasattr(os, "setns"):
        os.setns(fd, nstype)
        return
    libc = _libc()
    if libc.setns(fd, nstype) != 0:
        # lazy: ctypes ~2 ms a plugin process; only setns needs it
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class NetnsGone(Exception):
    """The namespace path does not exist (DEL treats this as success)."""


def open_netns(path: str) -> int:
    """Open ``path`` and verify it is a network namespace; return the fd.

    Raises:
        NetnsGone: the path does not exist.
        CniError: code 104 when it exists but is not a network namespace.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsGone(path) from None
    except OSError as exc:
        raise CniError(INVALID_NETNS, f"failed to open netns {path!r}", exc.strerror or str(exc)) from None
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        kind = -1
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise CniError(INVALID_NETNS, f"{path!r} is not a network namespace")
    return fd


def ns_id(path: str) -> tuple[int, int]:
    """Identity (device, inode) of a namespace file.

    Raises:
        OSError: if the path cannot be stat'ed.
    """
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def is_own_netns(path: str) -> bool:
    """True when ``path`` is the namespace this process runs in."""
    try:
        return ns_id(path) == ns_id("/proc/thread-self/ns/net")
    except OSError:
        return False


@contextmanager
def entered(path: str) -> Iterator[None]:
    """Run a block inside the network namespace at ``path``, then come back.

    Raises:
        NetnsGone: the path does not exist.
        CniError: code 104 when it is not a network namespace or cannot be entered.
    """
    target = open_netns(path)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            setns(target, CLONE_NEWNET)
        except OSError as exc:
            raise CniError(INVALID_NETNS, f"failed to enter netns {path!r}", exc.strerror or "") from None
        try:
            yield
        finally:
            setns(home, CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


def exists(path: str) -> bool:
    """True when ``path`` exists (DEL: a missing namespace means nothing to undo inside it)."""
    try:
        os.stat(path)
        return True
    except OSError as exc:
        return exc.errno not in (errno.ENOENT, errno.ENOTDIR)
