"""An flock(2) queue in front of SQLite's write lock (one lock file per lease database).

Why: ``BEGIN IMMEDIATE`` alone makes concurrent writers wait in SQLite's busy handler,
which sleeps 1, 2, 5, 10 ... 100 ms between attempts and so wakes long after the lock
was freed: 50 concurrent ADDs took ~8x the reference host-local's wall time. A blocked
flock is woken by the kernel the moment the holder releases it, so writers queue back to
back. SQLite's own lock stays the correctness mechanism (a writer without this lock, e.g.
an older netctl, is still serialised by ``BEGIN IMMEDIATE``); the flock only orders the
queue. The kernel drops an flock when its holder dies, so a killed plugin never leaves it
held (crash safety as before: tests/unit/ipam/test_ipam_crash.py).

The wait is bounded like SQLite's busy timeout: in the main thread by a one-shot
``ITIMER_REAL`` whose SIGALRM interrupts the blocked flock (the previous handler and
timer are restored), elsewhere (signals only reach the main thread) by polling.
"""

from __future__ import annotations

import fcntl
import os
import time


class LockTimeout(Exception):
    """The lock was not free within the timeout."""


class _Expired(BaseException):
    """Raised by our SIGALRM handler inside the blocked flock (BaseException: no
    ``except Exception`` between the handler and us may swallow it)."""


def lock_path(db: str) -> str:
    """The lock file that goes with the database file ``db``."""
    return f"{db}.lock"


def open_lock(db: str) -> int:
    """Open (create) the lock file of ``db``; the caller closes the descriptor.

    Never lock the database file itself: closing any descriptor of a file drops the
    process's POSIX locks on it, which are SQLite's.

    Raises:
        OSError: when the file cannot be created or opened.
    """
    return os.open(lock_path(db), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def acquire(fd: int, timeout: float) -> None:
    """Take the exclusive flock on ``fd``, waiting at most ``timeout`` seconds.

    Raises:
        LockTimeout: the lock stayed held for ``timeout`` seconds.
        OSError: flock failed for another reason.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    # signal and threading are imported only when the lock is contended (plugin start-up)
    import threading

    if threading.current_thread() is threading.main_thread() and timeout > 0:
        _acquire_with_alarm(fd, timeout)
    else:
        _acquire_polling(fd, timeout)


def release(fd: int) -> None:
    """Drop the flock (closing the descriptor also does)."""
    fcntl.flock(fd, fcntl.LOCK_UN)


def _acquire_with_alarm(fd: int, timeout: float) -> None:
    # lazy: only a contended lock needs it
    import signal

    def expire(signum: int, frame: object) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.monotonic()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except _Expired:
        # the alarm may land just after flock returned: never keep a lock we report as not taken
        fcntl.flock(fd, fcntl.LOCK_UN)
        raise LockTimeout from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:
            # someone else's timer was running: give it back what is left of it
            left = max(old_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _acquire_polling(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout from None
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
