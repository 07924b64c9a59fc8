"""The flock queue in front of SQLite's write lock (ipam.writelock, SqliteStore.transaction)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from ipam import writelock
from ipam.errors import StoreBusy
from ipam.sqlstore import SqliteStore, db_path

CTX = multiprocessing.get_context("fork")


def _hold(path: str, ready: object, done: object) -> None:
    fd = writelock.open_lock(path)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()  # type: ignore[attr-defined]
    done.wait(30)  # type: ignore[attr-defined]


@pytest.fixture
def held(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A database whose lock file another process holds until the test ends."""
    path = str(tmp_path / "n.db")
    SqliteStore(path).close()
    ready, done = CTX.Event(), CTX.Event()
    proc = CTX.Process(target=_hold, args=(path, ready, done))
    proc.start()
    assert ready.wait(10)
    yield path
    done.set()
    proc.join(10)


def test_open_does_not_wait_for_a_writer(held: str) -> None:
    # readers (CHECK, STATUS) and the open of an ADD do not queue behind a write
    with SqliteStore(held, busy_timeout=0.2) as store:
        assert store.leases() == []


def _hold_open_exclusively(path: str, ready: object, done: object) -> None:
    fd = writelock.open_lock(path)
    assert writelock.try_exclusive_open(fd)  # what GC holds while it deletes the database
    ready.set()  # type: ignore[attr-defined]
    done.wait(30)  # type: ignore[attr-defined]


def test_open_waits_while_gc_deletes_then_says_busy(tmp_path: Path) -> None:
    path = str(tmp_path / "n.db")
    SqliteStore(path).close()
    ready, done = CTX.Event(), CTX.Event()
    proc = CTX.Process(target=_hold_open_exclusively, args=(path, ready, done))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StoreBusy) as exc:
            SqliteStore(path, busy_timeout=0.2)
        assert exc.value.code == 11 and "try again" in str(exc.value)
        # and GC cannot delete while someone opens: the exclusive open lock is refused
        fd = writelock.open_lock(path)
        try:
            assert not writelock.try_exclusive_open(fd)
        finally:
            os.close(fd)
    finally:
        done.set()
        proc.join(10)


def test_transaction_waits_for_the_flock_then_says_busy(tmp_path: Path) -> None:
    path = str(tmp_path / "n.db")
    with SqliteStore(path, busy_timeout=0.2) as store:
        ready, done = CTX.Event(), CTX.Event()
        proc = CTX.Process(target=_hold, args=(path, ready, done))
        proc.start()
        try:
            assert ready.wait(10)
            with pytest.raises(StoreBusy) as exc, store.transaction():
                pass
        finally:
            done.set()
            proc.join(10)
    assert exc.value.code == 11 and "try again" in str(exc.value)


def test_alarm_wait_restores_the_previous_handler_and_timer(held: str) -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        fd = writelock.open_lock(held)
        try:
            with pytest.raises(writelock.LockTimeout):
                writelock.acquire(fd, 0.1)
        finally:
            os.close(fd)
        assert signal.getsignal(signal.SIGALRM) is not previous  # ours: the lambda
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 4.0 < left < 5.0  # the caller's timer runs on, minus the time we waited
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_polling_wait_outside_the_main_thread(held: str) -> None:
    outcome: list[BaseException | None] = []

    def worker() -> None:
        fd = writelock.open_lock(held)
        try:
            writelock.acquire(fd, 0.1)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome.append(exc)
        finally:
            os.close(fd)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], writelock.LockTimeout)


def test_the_flock_is_free_after_commit_and_rollback(tmp_path: Path) -> None:
    path = str(tmp_path / "n.db")
    with SqliteStore(path) as store:
        with store.transaction():
            pass
        with pytest.raises(RuntimeError), store.transaction():
            raise RuntimeError("boom")
        # another descriptor (as another process) gets the lock at once
        fd = writelock.open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_drop_removes_the_lock_file(tmp_path: Path) -> None:
    path = db_path(str(tmp_path), "gone")
    with SqliteStore(path) as store:
        with store.transaction():
            pass
        assert os.path.exists(writelock.lock_path(path))
        assert store.drop_if_empty() == "removed"
    assert os.listdir(tmp_path) == []


def test_hold_follows_a_lock_file_deleted_while_waiting(tmp_path: Path) -> None:
    """A process that opened the lock file, then waited while its holder deleted it (GC
    dropping the database), must not count as holding the lock: it takes the new file's."""
    path = str(tmp_path / "n.db")
    stale = writelock.open_lock(path)
    os.unlink(writelock.lock_path(path))  # what drop_if_empty does while holding it
    fd = writelock.hold(path, stale, 1.0)
    try:
        assert os.fstat(fd).st_ino == os.stat(writelock.lock_path(path)).st_ino
        # and it is the lock everyone else now queues on
        other = writelock.open_lock(path)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    finally:
        os.close(fd)


def test_hold_closes_its_descriptor_on_timeout(held: str) -> None:
    fd = writelock.open_lock(held)
    with pytest.raises(writelock.LockTimeout):
        writelock.hold(held, fd, 0.05)
    with pytest.raises(OSError):
        os.fstat(fd)
