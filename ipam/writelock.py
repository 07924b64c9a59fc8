"""An flock(2) queue in front of SQLite's write lock (one lock file per lease database).

Why: ``BEGIN IMMEDIATE`` alone makes concurrent writers wait in SQLite's busy handler,
which sleeps 1, 2, 5, 10 ... 100 ms between attempts and so wakes long after the lock
was freed: 50 concurrent ADDs took ~8x the reference host-local's wall time. A blocked
flock is woken by the kernel the moment the holder releases it, so writers queue back to
back. SQLite's own lock stays the correctness mechanism (a writer without this lock, e.g.
an older netctl, is still serialised by ``BEGIN IMMEDIATE``); the flock only orders the
queue. The kernel drops an flock when its holder dies, so a killed plugin never leaves it
held (crash safety as before: tests/unit/ipam/test_ipam_crash.py).

The same file carries a second, independent lock (on Linux flock and fcntl locks do not
interact): the *open lock*, an open-file-description fcntl lock on its first byte. Opening
a database holds it shared from before the connect until the connection has read the file
(and so holds SQLite's shared lock); GC deleting an empty database takes it exclusive
(without waiting: :func:`try_exclusive_open`) besides the flock. Openers thus never queue
behind writers, and no connection can be opened between GC's check that nobody has the
file open and its unlink (``SqliteStore.drop_if_empty``).

The lock file is deleted only by a process holding both locks exclusively. A process that
opened the old file and waited on it would then hold a lock nobody else sees, so
:func:`hold` checks after each acquire that the file it locked is still the one at the
path, and queues again on the new one.

The wait is bounded like SQLite's busy timeout: in the main thread by a one-shot
``ITIMER_REAL`` whose SIGALRM interrupts the blocked flock (the previous handler and
timer are restored), elsewhere (signals only reach the main thread) by polling.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
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


def hold(db: str, fd: int, timeout: float, *, opening: bool = False) -> int:
    """Take the flock (or with ``opening``, the shared open lock) of the lock file that is
    at ``db``'s lock path now.

    ``fd`` is a descriptor of the lock file opened earlier (or -1); ``hold`` owns it from
    then on. Returns the descriptor that holds the lock: ``fd`` itself, or a new one when
    the file was deleted since it was opened (``fd`` is then closed: its lock guards
    nothing any more). On an exception the descriptor is closed.

    Raises:
        LockTimeout: the lock stayed held for ``timeout`` seconds.
        OSError: the file cannot be opened, or locking failed.
    """
    deadline = time.monotonic() + timeout
    while True:
        if fd < 0:
            fd = open_lock(db)
        try:
            left = max(deadline - time.monotonic(), 0.0)
            if opening:
                _share_open(fd, left)
            else:
                acquire(fd, left)
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


def _ofd_lock(fd: int, kind: int) -> bool:
    """One non-blocking open-file-description lock request on byte 0; False when another
    description holds a conflicting lock."""
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0: required for OFD locks)
    arg = struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, arg)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def _share_open(fd: int, timeout: float) -> None:
    # polling: the open lock is held exclusively only for the moment GC deletes a file
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not _ofd_lock(fd, fcntl.F_RDLCK):
        if time.monotonic() >= deadline:
            raise LockTimeout
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def release_open(fd: int) -> None:
    """Drop the open lock (shared or exclusive) held through ``fd``."""
    _ofd_lock(fd, fcntl.F_UNLCK)


def try_exclusive_open(fd: int) -> bool:
    """Take the open lock exclusively if nobody is opening the database; never waits.

    Raises:
        OSError: fcntl failed for another reason than a conflicting lock.
    """
    return _ofd_lock(fd, fcntl.F_WRLCK)


def try_acquire(fd: int) -> bool:
    """Take the flock if it is free; never waits."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


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
