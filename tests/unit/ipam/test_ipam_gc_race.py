"""GC deleting an empty lease database while ADDs and DELs run on the same network.

No root needed: plain processes on a tmp_path database, the plugin functions called in
each process as the warm daemon's workers call them. The deterministic interleavings are
in test_ipam_store.py (an ADD that opened the database, an ADD queued on the lock file
GC deletes); this one checks that no interleaving loses a lease to the unlink.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from ipam.sqlstore import SqliteStore
from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs
from netplugins.ipam import hostlocal

CTX = multiprocessing.get_context("fork")
WORKERS = 4
ROUNDS = 25


def _conf(data_dir: Path, **extra: Any) -> bytes:
    return json.dumps({
        "cniVersion": "1.1.0", "name": "racenet", "type": "bridge",
        "ipam": {"type": "host-local", "dataDir": str(data_dir), "ranges": [[{"subnet": "10.30.0.0/24"}]]},
        **extra,
    }).encode()


def _cmd(command: str, cid: str, stdin: bytes) -> CmdArgs:
    return CmdArgs(command=command, container_id=cid, netns="/run/netns/x", ifname="eth0", stdin=stdin)


def _worker(data_dir: Path, w: int, out: Any) -> None:
    stdin = _conf(data_dir)
    db = str(data_dir / "racenet.db")
    lost = []
    try:
        for n in range(ROUNDS):
            cid = f"w{w}-{n}"
            hostlocal.cmd_add(_cmd("ADD", cid, stdin))
            # the lease must be in the file at the path, not in one GC unlinked meanwhile
            with SqliteStore(db) as s:
                if not s.find(cid, "eth0"):
                    lost.append(cid)
            hostlocal.cmd_del(_cmd("DEL", cid, stdin))
    except CniError as err:
        lost.append(f"{err.code} {err.msg}")
    except BaseException as exc:  # noqa: BLE001 - reported to the test, never a hang
        lost.append(repr(exc))
    out.put((f"w{w}", ", ".join(lost)))


def _gc(data_dir: Path, stop: Any, out: Any) -> None:
    # every worker attachment is valid: GC never releases them, it only drops the
    # database whenever the workers' DELs left it empty
    valid = [{"containerID": f"w{w}-{n}", "ifname": "eth0"} for w in range(WORKERS) for n in range(ROUNDS)]
    stdin = _conf(data_dir, **{"cni.dev/valid-attachments": valid})
    runs = 0
    while not stop.is_set():
        try:
            hostlocal.cmd_gc(CmdArgs(command="GC", container_id="", netns="", ifname="", stdin=stdin))
        except CniError as err:
            out.put(("gc", f"GC failed: {err.code} {err.msg}"))
            return
        runs += 1
    out.put(("gc", f"ok {runs}"))


def test_no_lease_is_lost_to_a_concurrent_drop(tmp_path: Path) -> None:
    data = tmp_path / "ipam"
    out, stop = CTX.Queue(), CTX.Event()
    gc = CTX.Process(target=_gc, args=(data, stop, out))
    gc.start()
    workers = [CTX.Process(target=_worker, args=(data, w, out)) for w in range(WORKERS)]
    for p in workers:
        p.start()
    results = dict(out.get(timeout=120) for _ in workers)
    stop.set()
    results.update([out.get(timeout=60)])
    for p in [*workers, gc]:
        p.join(30)
    assert {k: v for k, v in results.items() if k != "gc"} == {f"w{w}": "" for w in range(WORKERS)}
    assert results["gc"].startswith("ok ")
    db = data / "racenet.db"
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
        finally:
            conn.close()


def _gc_once(data_dir: Path) -> None:
    stdin = _conf(data_dir, **{"cni.dev/valid-attachments": []})
    hostlocal.cmd_gc(CmdArgs(command="GC", container_id="", netns="", ifname="", stdin=stdin))


def test_gc_killed_while_dropping_leaves_a_usable_network(tmp_path: Path) -> None:
    """SIGKILL at random points of a GC that deletes the database: whatever it left (the
    file in rollback mode, a lock file without a database, nothing), the next ADD works
    and its lease is kept."""
    import os
    import random
    import signal
    import time

    data = tmp_path / "ipam"
    stdin = _conf(data)
    rng = random.Random(14)
    for i in range(30):
        hostlocal.cmd_add(_cmd("ADD", f"old{i}", stdin))
        hostlocal.cmd_del(_cmd("DEL", f"old{i}", stdin))
        proc = CTX.Process(target=_gc_once, args=(data,))
        proc.start()
        time.sleep(rng.uniform(0, 0.004))
        if proc.pid is not None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        hostlocal.cmd_add(_cmd("ADD", f"new{i}", stdin))
        db = data / "racenet.db"
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = conn.execute("SELECT container_id FROM leases").fetchall()
        finally:
            conn.close()
        assert rows == [(f"new{i}",)], i
        hostlocal.cmd_del(_cmd("DEL", f"new{i}", stdin))
