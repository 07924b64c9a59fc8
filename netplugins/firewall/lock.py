"""An flock(2) around read-modify-write of the firewall (plugin calls run concurrently).

nftables: our own lock file (default ``/run/netctl/firewall.lock``); iptables: the
xtables lock ``/run/xtables.lock`` that iptables-legacy itself takes (libiptc does not),
so that concurrent plugin processes and iptables commands don't lose each other's commits.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import FirewallError

DEFAULT_NFT_LOCK = "/run/netctl/firewall.lock"
#: iptables honours XTABLES_LOCKFILE too (xshared.c), so do we
DEFAULT_XTABLES_LOCK = os.environ.get("XTABLES_LOCKFILE", "/run/xtables.lock")
DEFAULT_TIMEOUT = 30.0


@contextmanager
def file_lock(path: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created with its directory if missing).

    Raises:
        FirewallError: the file cannot be opened, or the lock is not free within ``timeout``.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise FirewallError(f"cannot open lock file {path!r}", exc.strerror or str(exc)) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # polling keeps the wait bounded without signals (plugins may run threads)
                if time.monotonic() > deadline:
                    raise FirewallError(
                        f"timed out after {timeout:.0f}s waiting for lock {path!r}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
