"""One plugin call at a time per attachment (container ID + interface), across processes.

A runtime that times out kills the plugin process and sends DEL. Through the agent, the
worker that ran the ADD is another process and goes on; without this lock the DEL could
run while the ADD is still building, return 0, and the ADD would then finish and leave a
veth, a DNS name and a container holding an address whose lease the DEL just released.
With it, the DEL waits until the ADD (or its undo, see netplugins.daemon) is over.

The lock is an flock on ``<lockdir>/<hash>.lock``, removed when the call ends; the lock directory comes from
``NETCTL_LOCK_DIR``, else ``$NETCTL_ROOT/run/locks``, else ``/run/netctl/locks`` (tmpfs:
gone with a reboot, like the attachments). A delegated plugin of ours (exec'd by the main
plugin while it holds the lock) sees ``NETCTL_ATTACHMENT_LOCK`` naming the same key and
does not wait for itself.

Stdlib only and imported lazily: VERSION and STATUS never need it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from .digest import attachment_digest

#: commands that act on one attachment; VERSION, STATUS and GC do not
COMMANDS = ("ADD", "DEL", "CHECK")
HELD_ENV = "NETCTL_ATTACHMENT_LOCK"
DEFAULT_DIR = "/run/netctl/locks"
#: a call stuck longer than this behind another one on the same attachment gives up
#: with "try again" (code 11) rather than hang the runtime forever
WAIT_LIMIT = 120.0


class LockTimeout(Exception):
    """Another call on the attachment held the lock for longer than the wait limit."""


def lock_dir(env: Mapping[str, str]) -> str:
    """Where the lock files live for a call made with ``env``."""
    explicit = env.get("NETCTL_LOCK_DIR")
    if explicit and explicit.startswith("/"):
        return explicit
    root = env.get("NETCTL_ROOT")
    if root and root.startswith("/"):
        return os.path.join(root, "run", "locks")
    return DEFAULT_DIR


def attachment_key(env: Mapping[str, str]) -> str | None:
    """The lock key of the call, or None when the call needs no lock."""
    if env.get("CNI_COMMAND") not in COMMANDS:
        return None
    cid, ifname = env.get("CNI_CONTAINERID", ""), env.get("CNI_IFNAME", "")
    if not cid:
        return None  # the plugin refuses the call anyway (code 4)
    return attachment_digest(cid, ifname)[:32]


@contextmanager
def attachment_lock(env: MutableMapping[str, str], limit: float = WAIT_LIMIT) -> Iterator[None]:
    """Hold the call's attachment lock for the block (no-op for calls without one).

    Marks ``env`` with :data:`HELD_ENV` so that delegates we exec do not wait for us.

    Raises:
        LockTimeout: the lock was not free within ``limit`` seconds.
        OSError: the lock directory cannot be created or the lock file opened.
    """
    key = attachment_key(env)
    if key is None or env.get(HELD_ENV) == key:
        yield
        return
    directory = lock_dir(env)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{key}.lock")
    fd = _acquire(path, limit)
    env[HELD_ENV] = key
    try:
        yield
    finally:
        env.pop(HELD_ENV, None)
        # the lock file goes with the call, so none is ever left behind: unlinked while
        # held, and a waiter that then gets the old file notices (see _acquire) and takes
        # the path's new one
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def _acquire(path: str, limit: float) -> int:
    deadline = time.monotonic() + limit
    delay = 0.0005
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise LockTimeout(f"another plugin call on this attachment has run for "
                                      f"over {limit:.0f}s")
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # a DEL removed this file after we opened it: take the new one
