"""The LeaseStore contract (both stores) and the SQLite store's own guarantees."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipam.errors import StoreBusy, StoreError
from ipam.memory import MemoryStore
from ipam.ranges import address as IPAddress
from ipam.sqlstore import SqliteStore, address_key, db_path
from ipam.store import Lease, LeaseStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseStore]:
    s: LeaseStore = MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "n.db"))
    yield s
    s.close()


def lease(addr: str, cid: str = "c1", ifname: str = "eth0", **kw: object) -> Lease:
    return Lease(IPAddress(addr), cid, ifname, **kw)  # type: ignore[arg-type]


def test_contract(store: LeaseStore) -> None:
    with store.transaction():
        assert store.reserve(lease("10.1.0.2", range_id="0", pending=True, owner="o"))
        assert not store.reserve(lease("10.1.0.2", "c2"))
        assert store.reserve(lease("fd00::2", range_id="1"))
        assert store.reserve(lease("10.1.0.3", "c2", range_id="0"))
    assert store.last_reserved("0") == IPAddress("10.1.0.3")
    assert store.last_reserved("1") == IPAddress("fd00::2")
    assert store.last_reserved("7") is None
    holder = store.holder(IPAddress("10.1.0.2"))
    assert holder is not None and (holder.container_id, holder.pending, holder.owner) == ("c1", True, "o")
    assert store.holder(IPAddress("10.1.0.9")) is None
    assert sorted(str(le.address) for le in store.find("c1", "eth0")) == ["10.1.0.2", "fd00::2"]
    assert store.find("c1", "eth1") == []
    assert store.count_between(IPAddress("10.1.0.0"), IPAddress("10.1.0.255")) == 2
    assert store.count_between(IPAddress("fd00::"), IPAddress("fd00::ffff")) == 1
    with store.transaction():
        assert store.mark_complete("c1", "eth0", "someone-else") == 0
        assert store.mark_complete("c1", "eth0", "o") == 1
    assert not any(le.pending for le in store.leases())
    with store.transaction():
        gone = store.release("c1", "eth0")
        assert sorted(str(le.address) for le in gone) == ["10.1.0.2", "fd00::2"]
        assert store.release("c1", "eth0") == []
        assert store.release_address(IPAddress("10.1.0.3")) is not None
        assert store.release_address(IPAddress("10.1.0.3")) is None
    assert store.leases() == []


def test_rollback(store: LeaseStore) -> None:
    with store.transaction():
        store.reserve(lease("10.1.0.2", range_id="0"))
    with pytest.raises(RuntimeError), store.transaction():
        store.reserve(lease("10.1.0.3", "c2", range_id="0"))
        store.release("c1", "eth0")
        raise RuntimeError("boom")
    assert [str(le.address) for le in store.leases()] == ["10.1.0.2"]
    assert store.last_reserved("0") == IPAddress("10.1.0.2")


def test_address_key_sorts_like_addresses() -> None:
    addrs = ["10.0.0.9", "10.0.0.10", "9.255.255.255", "255.0.0.1", "fd00::9", "fd00::10", "::1"]
    ips = [IPAddress(a) for a in addrs]
    assert sorted(ips, key=address_key) == sorted(ips, key=lambda a: (a.version, a))


def test_lookups_and_releases_use_indexes(tmp_path: Path) -> None:
    s = SqliteStore(str(tmp_path / "n.db"))
    with s.transaction():
        for i in range(200):
            s.reserve(lease(str(IPAddress(0x0A010000 + i, 4)), f"c{i}"))
    queries = [
        ("SELECT address FROM leases WHERE container_id = ? AND ifname = ?", ("c5", "eth0")),
        ("DELETE FROM leases WHERE container_id = ? AND ifname = ?", ("c5", "eth0")),
        ("SELECT address FROM leases WHERE addr_key = ?", (address_key(IPAddress("10.1.0.5")),)),
        ("DELETE FROM leases WHERE addr_key = ?", (address_key(IPAddress("10.1.0.5")),)),
        ("SELECT COUNT(*) FROM leases WHERE addr_key BETWEEN ? AND ?", ("4:0", "4:1")),
    ]
    for sql, params in queries:
        plan = " | ".join(s.query_plan(sql, params))
        assert plan.startswith("SEARCH") and ("INDEX" in plan or "PRIMARY KEY" in plan), (sql, plan)
        assert "SCAN" not in plan, (sql, plan)
    s.close()


def test_wal_and_location(tmp_path: Path) -> None:
    path = db_path(str(tmp_path / "deep" / "dir"), "mynet")
    assert path == str(tmp_path / "deep" / "dir" / "mynet.db")
    s = SqliteStore(path)
    with s.transaction():
        s.reserve(lease("10.1.0.2"))
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    s.close()
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(Exception, match="invalid network name"):
            db_path(str(tmp_path), bad)


def test_open_existing_creates_nothing(tmp_path: Path) -> None:
    assert SqliteStore.open_existing(str(tmp_path / "none" / "n.db")) is None
    assert not (tmp_path / "none").exists()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_not_a_database_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    path.write_bytes(b"this is not sqlite at all\n" * 100)
    before = digest(path)
    with pytest.raises(StoreError) as exc:
        SqliteStore(str(path))
    assert exc.value.code == 5
    assert str(path) in str(exc.value) and "file is not a database" in str(exc.value)
    assert "left untouched" in str(exc.value)
    assert digest(path) == before
    assert sorted(os.listdir(tmp_path)) == ["n.db"]


def test_damaged_database_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    s = SqliteStore(str(path))
    with s.transaction():
        for i in range(2000):
            s.reserve(lease(str(IPAddress(0x0A010000 + i, 4)), f"container-{i:05d}"))
    s.close()
    raw = bytearray(path.read_bytes())
    # scribble over the b-tree pages (keep the 100-byte header so it still looks like SQLite)
    for off in range(4096, len(raw), 4096):
        raw[off:off + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    before = digest(path)
    with pytest.raises(StoreError) as exc:
        s = SqliteStore(str(path))
        try:
            s.find("container-00005", "eth0")
            s.leases()
        finally:
            s.close()
    assert exc.value.code == 5 and str(path) in str(exc.value)
    assert digest(path) == before


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "n.db").mkdir()  # a directory where the database should be
    with pytest.raises(StoreError) as exc:
        SqliteStore(str(tmp_path / "n.db"))
    assert exc.value.code == 5 and "n.db" in str(exc.value)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the IPAM data directory"):
        SqliteStore(str(blocker / "sub" / "n.db"))


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        SqliteStore(str(path))


def test_busy_database_means_try_again(tmp_path: Path) -> None:
    path = str(tmp_path / "n.db")
    SqliteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        s = SqliteStore(path, busy_timeout=0.2)
        with pytest.raises(StoreBusy) as exc, s.transaction():
            pass
        assert exc.value.code == 11 and "try again" in str(exc.value)
        # readers are not blocked by a writer (WAL)
        assert s.find("c1", "eth0") == []
        s.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_drop_if_empty(tmp_path: Path) -> None:
    s = SqliteStore(db_path(str(tmp_path), "gone"))
    with s.transaction():
        s.reserve(lease("10.1.0.2", range_id="0"))
    assert s.drop_if_empty() == "kept"  # a lease is left: nothing changes
    assert s.last_reserved("0") == IPAddress("10.1.0.2")
    with s.transaction():
        s.release("c1", "eth0")
    assert any(p.name.startswith("gone.db") for p in tmp_path.iterdir())
    assert s.drop_if_empty() == "removed"
    assert list(tmp_path.iterdir()) == []  # database, -wal, -shm and lock file
    s.close()  # closed already: a second close is harmless
    # created again, it starts over
    with SqliteStore(db_path(str(tmp_path), "gone")) as again:
        assert again.last_reserved("0") is None


def test_drop_keeps_a_database_another_connection_has_open(tmp_path: Path) -> None:
    """An ADD that opened the database before GC decided to drop it must not lose its
    lease to the unlink: the file stays (only the cursor is forgotten) and the lease the
    ADD then writes is in the file at the path."""
    path = db_path(str(tmp_path), "busy")
    gc = SqliteStore(path)
    with gc.transaction():
        gc.reserve(lease("10.1.0.7", range_id="0"))
        gc.release("c1", "eth0")
    add = SqliteStore(path)  # opened, no transaction yet
    assert gc.drop_if_empty() == "reset"
    gc.close()
    with add.transaction():
        assert add.last_reserved("0") is None  # the cursor is forgotten all the same
        assert add.reserve(lease("10.1.0.2", "late", range_id="0"))
    add.close()
    with SqliteStore(path) as check:
        assert [le.container_id for le in check.leases()] == ["late"]
    # a raw reader (another program) holds it open too
    reader = sqlite3.connect(path)
    reader.execute("SELECT COUNT(*) FROM leases").fetchone()
    try:
        with SqliteStore(path) as s:
            with s.transaction():
                s.release("late", "eth0")
            assert s.drop_if_empty() == "reset"
        assert os.path.exists(path)
    finally:
        reader.close()
    with SqliteStore(path) as s:
        assert s.drop_if_empty() == "removed"
    assert list(tmp_path.iterdir()) == []


def test_drop_waits_for_no_opener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ADD between its connect and its first read holds no SQLite lock yet: its shared
    open lock is what keeps GC from deleting the file under it."""
    from ipam import sqlstore

    path = db_path(str(tmp_path), "n")
    gc = SqliteStore(path)
    real = SqliteStore._init
    outcome: list[str] = []

    def gc_runs_before_the_first_read(self: SqliteStore) -> None:
        if self is not gc:
            outcome.append(gc.drop_if_empty())  # the ADD is connected, has read nothing
        real(self)

    monkeypatch.setattr(sqlstore.SqliteStore, "_init", gc_runs_before_the_first_read)
    with SqliteStore(path) as add:
        monkeypatch.undo()
        assert outcome == ["reset"]
        with add.transaction():
            assert add.reserve(lease("10.1.0.2", "late", range_id="0"))
    gc.close()
    with SqliteStore(path) as s:
        assert [le.container_id for le in s.leases()] == ["late"]


def test_opener_queued_behind_a_drop_creates_a_new_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ADD that opened the lock file, then GC dropped the database (and the lock file)
    before the ADD got the flock: the ADD notices, queues on a new lock file, creates a
    new database and keeps its lease; writers after it queue on the same lock."""
    import fcntl

    from ipam import sqlstore, writelock

    path = db_path(str(tmp_path), "n")
    gc = SqliteStore(path)
    real = sqlstore.open_new_lock

    def open_then_gc_drops(db: str) -> tuple[int, bool]:
        opened = real(db)
        assert gc.drop_if_empty() == "removed"  # GC runs between the ADD's open and flock
        return opened

    monkeypatch.setattr(sqlstore, "open_new_lock", open_then_gc_drops)
    add = SqliteStore(path)
    monkeypatch.undo()
    with add, add.transaction():
        assert add.reserve(lease("10.1.0.2", "late", range_id="0"))
        other = writelock.open_lock(path)
        try:
            with pytest.raises(BlockingIOError):  # the ADD holds the lock everyone sees
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    with SqliteStore(path) as s:
        assert [le.container_id for le in s.leases()] == ["late"]


def test_reserve_without_cursor_keeps_last_reserved(tmp_path: Path) -> None:
    for store in (MemoryStore(), SqliteStore(str(tmp_path / "c.db"))):
        with store.transaction():
            assert store.reserve(lease("10.1.0.2", range_id="0"))
            assert store.reserve(lease("10.1.0.50", "c2", range_id="0"), cursor=False)
        assert store.last_reserved("0") == IPAddress("10.1.0.2")
        store.close()
