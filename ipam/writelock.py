"""An flock(2) queue in front of SQLite's write lock (one lock file per lease database).

Why: ``BEGIN IMMEDIATE`` alone makes concurrent writers wait in SQLite's busy handler,
which sleeps 1, 2, 5, 10 ... 100 ms between attempts and so wakes long after the lock
was freed: 50 concurrent ADDs took ~8x the reference host-local's wall time. A blocked
flock is woken by the kernel the moment the holder releases it, so writers queue back to
back. SQLite's own lock stays the correctness mechanism (a writer without this lock, e.g.
an older netctl, is still serialised by ``BEGIN IMMEDIATE``); the flock only orders the
queue. The kernel drops an flock when its holder dies, so a killed plugin never leaves it
held (crash safety as before: tests/unit/ipam/test_ipam_crash.py).

The lock file may be deleted by whoever holds it (GC deletes an unused database with its
lock file: ``SqliteStore.drop_if_empty``). A process that opened the old file and waited
on it would then hold a lock nobody else sees, so :func:`hold` checks after each acquire
that the file it locked is still the one at the path, and queues again on the new one.

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


def open_new_lock(db: str) -> tuple[int, bool]:
    """Open (create) the lock file of ``db``; also say whether this call created it.

    Raises:
        OSError: when the file cannot be created or opened.
    """
    path = lock_path(db)
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), True
        except FileExistsError:
            pass
        try:
            return os.open(path, os.O_RDWR | os.O_CLOEXEC), False
        except FileNotFoundError:
            continue  # deleted between the two opens: create it


def hold(db: str, fd: int, timeout: float) -> int:
    """Take the flock of the lock file that is at ``db``'s lock path now.

    ``fd`` is a descriptor of the lock file opened earlier (or -1); ``hold`` owns it from
    then on. Returns the descriptor that holds the lock: ``fd`` itself, or a new one when
    the file was deleted since it was opened (``fd`` is then closed: its lock guards
    nothing any more). On an exception the descriptor is closed.

    Raises:
        LockTimeout: the lock stayed held for ``timeout`` seconds.
        OSError: the file cannot be opened, or flock failed.
    """
    deadline = time.monotonic() + timeout
    while True:
        if fd < 0:
            fd = open_lock(db)
        try:
            acquire(fd, max(deadline - time.monotonic(), 0.0))
            try:
                now: os.stat_result | None = os.stat(lock_path(db))
            except FileNotFoundError:
                now = None
            own = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (own.st_dev, own.st_ino):
            return fd
        os.close(fd)
        fd = -1


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
