"""The real lease store: one SQLite database per network (standard library ``sqlite3``).

Where: ``<dataDir>/<network>.db`` (plus SQLite's ``-wal`` and ``-shm`` side files).
One database per network keeps networks independent: an ADD on one network never waits
for another, removing a network removes one file, and a damaged file affects one network.

Why SQLite rather than host-local's file-per-address directory: a lease is found by
attachment or by address through an index (host-local reads every file of the directory
for each DEL and CHECK), several range sets are reserved in one transaction (all or
nothing), and SQLite's journal makes every transaction atomic even when the process is
killed in the middle of it.

Settings and what they buy:

* ``journal_mode=WAL``: readers (CHECK, STATUS) never block the writer and vice versa; a
  process killed mid-transaction leaves uncommitted frames that the next opener ignores.
* ``synchronous=NORMAL``: a commit survives the process being killed (it is in the WAL,
  in the kernel's page cache); only a power loss can roll back the last commits, and a
  power loss has also killed every container those leases belonged to.
* ``BEGIN IMMEDIATE`` for every write: the write lock is taken up front, so two ADDs never
  read the same free address and then race to write it, and SQLite's busy handler (the
  ``busy_timeout``) queues writers instead of failing one with SQLITE_BUSY.
* an flock on ``<network>.db.lock`` taken just before ``BEGIN IMMEDIATE`` and dropped after
  COMMIT/ROLLBACK (:mod:`ipam.writelock`): writers then queue in the kernel, which wakes
  the next one as soon as the lock is free, instead of in SQLite's sleeping busy handler.
* opening holds the lock file's shared *open lock* (:mod:`ipam.writelock`) until the
  connection has read the file, and GC deletes a database only holding the flock and the
  open lock exclusively, and only when no other connection has the file open
  (:meth:`SqliteStore.drop_if_empty`): SQLite must never see its file unlinked under an
  open connection (sqlite.org/howtocorrupt.html, "unlinking or renaming a database file
  while in use": that connection's close would checkpoint into the unlinked file and then
  delete the *new* database's ``-wal`` by name). So no store can hold a deleted database.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from .errors import ConfigError, StoreBusy, StoreError
from .ranges import IPAddress, address
from .store import Lease, LeaseStore
from .writelock import (
    LockTimeout,
    hold,
    lock_path,
    open_new_lock,
    release,
    release_open,
    try_acquire,
    try_exclusive_open,
)

SCHEMA_VERSION = 1
#: seconds a writer waits for the database lock before "try again" (code 11)
DEFAULT_BUSY_TIMEOUT = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    addr_key     TEXT PRIMARY KEY,      -- family + 32 hex digits: sorts like the address
    address      TEXT NOT NULL,         -- the address as text ("10.1.0.5", "fd00::5")
    container_id TEXT NOT NULL,
    ifname       TEXT NOT NULL,
    range_id     TEXT NOT NULL,         -- the range set that handed it out (its subnets)
    pending      INTEGER NOT NULL DEFAULT 0,  -- 1 until the ADD that wrote it completed
    owner        TEXT NOT NULL DEFAULT '',    -- that ADD's token (ipam.owner)
    created      REAL NOT NULL          -- unix time of the reservation
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_attachment ON leases (container_id, ifname);
CREATE TABLE IF NOT EXISTS cursors (
    range_id     TEXT PRIMARY KEY,      -- round robin: the last address reserved per set
    address      TEXT NOT NULL
) WITHOUT ROWID;
"""

_COLUMNS = "address, container_id, ifname, range_id, pending, owner"

# SQLite primary result codes (sqlite3.h), to tell "busy" from "broken"
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

_UNTOUCHED = ("the file was left untouched; move it aside to start over with an empty "
              "database (the leases recorded in it are then forgotten)")


def db_path(data_dir: str, network: str) -> str:
    """Where the leases of ``network`` live.

    Raises:
        ConfigError: when the network name could escape ``data_dir``.
    """
    if not network or "/" in network or network.startswith("."):
        raise ConfigError(f"invalid network name {network!r} for a lease database")
    return os.path.join(data_dir, f"{network}.db")


def address_key(addr: IPAddress) -> str:
    """A text key that sorts like the address: "4:" or "6:" and 32 hex digits."""
    return f"{addr.version}:{int(addr):032x}"


def _row_lease(row: tuple[str, str, str, str, int, str]) -> Lease:
    return Lease(address=address(row[0]), container_id=row[1], ifname=row[2],
                 range_id=row[3], pending=bool(row[4]), owner=row[5])


class SqliteStore:
    """A :class:`~ipam.store.LeaseStore` on one SQLite file."""

    def __init__(self, path: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 create: bool = True) -> None:
        """Open (and with ``create``, create if needed) the database at ``path``.

        Opening holds the lock file's shared open lock until the connection has read the
        file (and so holds SQLite's shared lock, which keeps GC from deleting it:
        :meth:`drop_if_empty`); it never waits for writers.

        Raises:
            StoreError: the directory or file cannot be created or read, or it is not a
                lease database; the file is never modified or removed in that case.
            StoreBusy: the database stayed locked while it was being opened.
            FileNotFoundError: without ``create``, when there is no database (anymore).
        """
        self.path = path
        self.busy_timeout = busy_timeout
        self._in_txn = False
        self._lock_fd = -1
        self._conn: sqlite3.Connection | None = None
        directory = os.path.dirname(path) or "."
        if create:
            try:
                os.makedirs(directory, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the IPAM data directory {directory}",
                                 exc.strerror or str(exc)) from None
        try:
            fd, created = open_new_lock(path)
            self._lock_fd = hold(path, fd, busy_timeout, opening=True)
        except LockTimeout:
            raise StoreBusy(f"lease database {path} is busy: it was being deleted for more "
                            f"than {busy_timeout:g}s; try again") from None
        except OSError as exc:
            raise StoreError(f"cannot open {lock_path(path)}", exc.strerror or str(exc)) from None
        try:
            try:
                self._open(create)
            except BaseException:
                # leave nothing of ours beside a file that is no (usable) lease database
                if created or not os.path.exists(path):
                    self._unlink_lock_if_alone()
                raise
            finally:
                release_open(self._lock_fd)
        except BaseException:
            self.close()
            raise

    def _unlink_lock_if_alone(self) -> None:
        """Delete the lock file if nobody else holds or waits for either of its locks
        (the condition under which GC deletes it, see writelock); never waits."""
        if not try_acquire(self._lock_fd):
            return
        try:
            if try_exclusive_open(self._lock_fd):  # ours was the only shared hold
                with suppress(FileNotFoundError):
                    os.unlink(lock_path(self.path))
        finally:
            release(self._lock_fd)

    def _open(self, create: bool) -> None:
        """Connect and initialise, under the flock."""
        if not create and not os.path.exists(self.path):
            raise FileNotFoundError(self.path)
        with self._errors("open"):
            self._conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        self._init()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"lease database {self.path} is closed")
        return self._conn

    @classmethod
    def open_existing(cls, path: str, **kw: float) -> SqliteStore | None:
        """Open the database only if it exists (DEL, CHECK and STATUS create nothing).

        Raises:
            StoreError, StoreBusy: as the constructor.
        """
        if not os.path.exists(path):
            return None
        try:
            return cls(path, create=False, **kw)
        except FileNotFoundError:
            return None  # GC deleted it in between: nothing is leased

    def _init(self) -> None:
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                with self._errors("open"):
                    # switching a fresh file to WAL takes a lock that SQLite does not
                    # always queue for; many first ADDs at once retry here instead
                    self.conn.execute("PRAGMA journal_mode=WAL")
                break
            except StoreBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        with self._errors("open"):
            self.conn.execute("PRAGMA synchronous=NORMAL")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"lease database {self.path} has schema version {version}, "
                             f"newer than this netctl ({SCHEMA_VERSION})", _UNTOUCHED)
        if version < SCHEMA_VERSION:
            with self.transaction():
                # re-read under the lock: another process may have created it meanwhile
                if self.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    # statement by statement: executescript() would COMMIT our transaction
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                    self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3 exceptions into IPAM errors that name the file."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            text = str(exc)
            if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
                raise StoreBusy(f"lease database {self.path} is busy: another process held it "
                                f"for more than {self.busy_timeout:g}s; try again") from None
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or not isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"lease database {self.path} is unreadable: {text}",
                                 _UNTOUCHED) from None
            raise StoreError(f"lease database {self.path}: {action} failed: {text}") from None

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Hold the flock in front of SQLite's write lock (of the lock file at the path now).

        Raises:
            StoreBusy: it stayed held for the busy timeout.
            StoreError: flock failed.
        """
        fd, self._lock_fd = self._lock_fd, -1
        try:
            self._lock_fd = hold(self.path, fd, self.busy_timeout)
        except LockTimeout:
            raise StoreBusy(f"lease database {self.path} is busy: another process held it "
                            f"for more than {self.busy_timeout:g}s; try again") from None
        except OSError as exc:
            raise StoreError(f"cannot lock {lock_path(self.path)}", exc.strerror or str(exc)) from None
        try:
            yield
        finally:
            if self._lock_fd >= 0:
                release(self._lock_fd)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_txn:
            raise RuntimeError("SqliteStore.transaction is not re-entrant")
        with self._write_lock(), self._immediate():
            yield

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction; the caller holds the flock."""
        with self._errors("lock"):
            self.conn.execute("BEGIN IMMEDIATE")
        self._in_txn = True
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                with self._errors("commit"):
                    self.conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
        finally:
            self._in_txn = False

    def drop_if_empty(self) -> str:
        """When no lease is left, forget the round-robin cursors and delete the database
        with its side files and lock file, so that the next ADD starts at the first
        address again. The store is closed afterwards if the files went.

        Returns "kept" (leases remain: nothing changed), "reset" (no lease; cursors
        forgotten, but another connection has the file open, so it stays until a later
        GC), or "removed".

        Why it is safe: it holds the writers' flock and, exclusively, the open lock that
        every opener holds shared from before its connect until its first read
        (:meth:`__init__`; if an opener holds it, the file stays). It deletes only after
        switching the file out of WAL mode, which SQLite refuses while any other
        connection has it open (they hold a shared lock from their first read until they
        close). So no connection to the deleted file exists or can appear; an opener
        queued on the old lock file notices the file is gone (writelock.hold) and
        creates a new database.

        Raises:
            StoreBusy, StoreError: as :meth:`transaction`.
        """
        with self._write_lock():
            with self._immediate():
                with self._errors("read"):
                    if self.conn.execute("SELECT 1 FROM leases LIMIT 1").fetchone():
                        return "kept"
                    self.conn.execute("DELETE FROM cursors")
            try:
                if not try_exclusive_open(self._lock_fd):
                    return "reset"  # another process is opening it right now
            except OSError as exc:
                raise StoreError(f"cannot lock {lock_path(self.path)}", exc.strerror or str(exc)) from None
            try:
                try:
                    with self._errors("drop"):
                        mode = self.conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
                except StoreBusy:
                    return "reset"  # a reader or an ADD has it open: the file must stay
                if str(mode).lower() != "delete":
                    return "reset"
                with suppress(sqlite3.Error):
                    self.conn.close()
                self._conn = None
                for path in (self.path, f"{self.path}-wal", f"{self.path}-shm", f"{self.path}-journal",
                             lock_path(self.path)):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        raise StoreError(f"cannot remove {path}", exc.strerror or str(exc)) from None
            finally:
                release_open(self._lock_fd)
        self.close()
        return "removed"

    def reserve(self, lease: Lease, *, cursor: bool = True) -> bool:
        with self._errors("reserve"):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO leases (addr_key, address, container_id, ifname,"
                " range_id, pending, owner, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (address_key(lease.address), str(lease.address), lease.container_id,
                 lease.ifname, lease.range_id, int(lease.pending), lease.owner, time.time()))
            if cur.rowcount != 1:
                return False
            if not cursor:
                return True
            self.conn.execute("INSERT OR REPLACE INTO cursors (range_id, address) VALUES (?, ?)",
                               (lease.range_id, str(lease.address)))
        return True

    def last_reserved(self, range_id: str) -> IPAddress | None:
        with self._errors("read"):
            row = self.conn.execute("SELECT address FROM cursors WHERE range_id = ?",
                                     (range_id,)).fetchone()
        return address(row[0]) if row else None

    def holder(self, address: IPAddress) -> Lease | None:
        with self._errors("read"):
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM leases WHERE addr_key = ?",
                                     (address_key(address),)).fetchone()
        return _row_lease(row) if row else None

    def find(self, container_id: str, ifname: str) -> list[Lease]:
        with self._errors("read"):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM leases WHERE container_id = ? AND ifname = ?",
                (container_id, ifname)).fetchall()
        return [_row_lease(r) for r in rows]

    def release(self, container_id: str, ifname: str) -> list[Lease]:
        with self._errors("release"):
            rows = self.conn.execute(
                f"DELETE FROM leases WHERE container_id = ? AND ifname = ? RETURNING {_COLUMNS}",
                (container_id, ifname)).fetchall()
        return [_row_lease(r) for r in rows]

    def release_address(self, address: IPAddress) -> Lease | None:
        with self._errors("release"):
            row = self.conn.execute(
                f"DELETE FROM leases WHERE addr_key = ? RETURNING {_COLUMNS}",
                (address_key(address),)).fetchone()
        return _row_lease(row) if row else None

    def mark_complete(self, container_id: str, ifname: str, owner: str) -> int:
        with self._errors("update"):
            cur = self.conn.execute(
                "UPDATE leases SET pending = 0 WHERE container_id = ? AND ifname = ?"
                " AND owner = ? AND pending = 1", (container_id, ifname, owner))
        return int(cur.rowcount)

    def count_between(self, first: IPAddress, last: IPAddress) -> int:
        with self._errors("read"):
            row = self.conn.execute(
                "SELECT COUNT(*) FROM leases WHERE addr_key BETWEEN ? AND ?",
                (address_key(first), address_key(last))).fetchone()
        return int(row[0])

    def leases(self) -> list[Lease]:
        with self._errors("read"):
            rows = self.conn.execute(f"SELECT {_COLUMNS} FROM leases ORDER BY addr_key").fetchall()
        return [_row_lease(r) for r in rows]

    def query_plan(self, sql: str, params: tuple[object, ...]) -> list[str]:
        """SQLite's plan for ``sql`` (tests assert look-ups use an index, not a scan)."""
        rows = self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [str(r[-1]) for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _implements(store: SqliteStore) -> LeaseStore:
    """mypy checks that SqliteStore implements the interface (Go's `var _ Store = ...`)."""
    return store
