"""The SQLite store under fire: 50 ADDs at once from 50 processes, and SIGKILL at random points.

No root needed: plain processes on a tmp_path database, the plugin functions called in
each process as the warm daemon's workers call them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ipam.sqlstore import SqliteStore
from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs
from netplugins.ipam import hostlocal

CTX = multiprocessing.get_context("fork")


def conf(data_dir: Path, ranges: list[list[dict]] | None = None) -> bytes:
    return json.dumps({
        "cniVersion": "1.0.0", "name": "crashnet", "type": "bridge",
        "ipam": {"type": "host-local", "dataDir": str(data_dir),
                 "ranges": ranges or [[{"subnet": "10.20.0.0/16"}], [{"subnet": "fd20::/64"}]]},
    }).encode()


def cmd(command: str, cid: str, stdin: bytes, ifname: str = "eth0") -> CmdArgs:
    return CmdArgs(command=command, container_id=cid, netns="/run/netns/x", ifname=ifname, stdin=stdin)


# ---------------------------------------------------------------- 50 ADDs at once

def _add_at_barrier(stdin: bytes, cid: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        res = hostlocal.cmd_add(cmd("ADD", cid, stdin))
        out.put((cid, [ip.address for ip in res.ips], None))
    except CniError as err:
        out.put((cid, None, (err.code, err.msg)))


def run_at_once(stdin: bytes, count: int) -> list[tuple[str, list[str] | None, tuple[int, str] | None]]:
    barrier = CTX.Barrier(count)
    out = CTX.Queue()
    procs = [CTX.Process(target=_add_at_barrier, args=(stdin, f"ctr{i:02d}", barrier, out))
             for i in range(count)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


def test_50_concurrent_adds_get_50_distinct_addresses(tmp_path: Path) -> None:
    stdin = conf(tmp_path, [[{"subnet": "10.30.0.0/24"}]])
    results = run_at_once(stdin, 50)  # the database does not exist yet: creation races too
    errors = [r for r in results if r[2] is not None]
    assert errors == []
    addrs = [r[1][0] for r in results if r[1]]
    assert len(addrs) == 50 and len(set(addrs)) == 50
    store = SqliteStore(str(tmp_path / "crashnet.db"))
    leases = {le.container_id: f"{le.address}/24" for le in store.leases()}
    store.close()
    assert leases == {cid: got[0] for cid, got, _ in results if got}
    assert all(not le.pending for le in SqliteStore(str(tmp_path / "crashnet.db")).leases())


def test_more_concurrent_adds_than_addresses(tmp_path: Path) -> None:
    stdin = conf(tmp_path, [[{"subnet": "10.31.0.0/27"}]])  # 29 usable addresses
    results = run_at_once(stdin, 50)
    ok = [r[1][0] for r in results if r[1]]
    failed = [r[2] for r in results if r[2]]
    assert len(ok) == 29 and len(set(ok)) == 29
    assert len(failed) == 21
    assert all(code == 110 and "no IP addresses available" in msg for code, msg in failed)


# ---------------------------------------------------------------- SIGKILL at random points

def _churn(stdin: bytes, log_path: str, seed: int) -> None:
    """ADD new containers and DEL old ones forever, logging each step once it is done."""
    rnd = random.Random(seed)
    done: list[str] = []
    with open(log_path, "a", buffering=1) as log:  # line-buffered: in the kernel before the next step
        n = 0
        while True:
            cid = f"s{seed}-{n}"
            n += 1
            res = hostlocal.cmd_add(cmd("ADD", cid, stdin))
            log.write(f"ADD-DONE {cid} {' '.join(ip.address for ip in res.ips)}\n")
            done.append(cid)
            if rnd.random() < 0.5 and done:
                victim = done.pop(rnd.randrange(len(done)))
                log.write(f"DEL-START {victim}\n")
                hostlocal.cmd_del(cmd("DEL", victim, stdin))
                log.write(f"DEL-DONE {victim}\n")


def verify(db: Path, log_path: Path) -> dict[str, list[Any]]:
    """The store is readable, consistent, and holds every lease of every completed ADD."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    store = SqliteStore(str(db))
    by_cid: dict[str, list[Any]] = defaultdict(list)
    for le in store.leases():
        by_cid[le.container_id].append(le)
    store.close()
    added: dict[str, set[str]] = {}
    del_started: set[str] = set()
    del_done: set[str] = set()
    for line in log_path.read_text().splitlines():
        word, cid, *rest = line.split()
        if word == "ADD-DONE":
            added[cid] = set(rest)
        elif word == "DEL-START":
            del_started.add(cid)
        elif word == "DEL-DONE":
            del_done.add(cid)
    for cid, leases in by_cid.items():
        # all or nothing: an attachment holds one v4 and one v6 lease, or none at all
        assert sorted(le.address.version for le in leases) == [4, 6], (cid, leases)
        assert len({le.pending for le in leases}) == 1, (cid, leases)
    for cid, addrs in added.items():
        if cid in del_done:
            assert cid not in by_cid, cid
        elif cid not in del_started:
            got = {f"{le.address}/{16 if le.address.version == 4 else 64}" for le in by_cid.get(cid, [])}
            assert got == addrs, (cid, got, addrs)
            assert not any(le.pending for le in by_cid[cid]), cid
    for cid, leases in by_cid.items():
        if cid not in added and cid not in del_started:
            # an ADD killed in flight: its leases may exist only as a committed pending pair
            # (killed between its two transactions) or as a completed pair (killed after the
            # second one but before the log line)
            assert all(le.ifname == "eth0" for le in leases)
    return by_cid


def test_sigkill_at_random_points_keeps_the_store_consistent(tmp_path: Path) -> None:
    stdin = conf(tmp_path)
    db = tmp_path / "crashnet.db"
    log_path = tmp_path / "log"
    log_path.touch()
    rnd = random.Random(1234)
    kills = 0
    for i in range(40):
        procs = [CTX.Process(target=_churn, args=(stdin, str(log_path), 2 * i + k)) for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            time.sleep(rnd.uniform(0.002, 0.06))
            assert p.pid is not None
            os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.join(10)
            kills += p.exitcode == -signal.SIGKILL
        verify(db, log_path)
    assert kills == 80
    by_cid = verify(db, log_path)
    added_lines = [ln for ln in log_path.read_text().splitlines() if ln.startswith("ADD-DONE")]
    assert len(added_lines) > 80  # the churn really ran between the kills
    # an attachment left pending by a killed ADD is taken over by the retried ADD
    pending = [cid for cid, leases in by_cid.items() if leases[0].pending]
    for cid in pending:
        before = {f"{le.address}" for le in by_cid[cid]}
        res = hostlocal.cmd_add(cmd("ADD", cid, stdin))
        assert {ip.ip for ip in res.ips} == before
    # and every leftover can be released
    for cid in by_cid:
        hostlocal.cmd_del(cmd("DEL", cid, stdin))
    for ln in added_lines:
        hostlocal.cmd_del(cmd("DEL", ln.split()[1], stdin))
    assert SqliteStore(str(db)).leases() == []


# ---------------------------------------------------------------- the crash retry, deterministically

def _add_then_die_before_completing(stdin: bytes) -> None:
    def die(*_a: object, **_k: object) -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return 0

    SqliteStore.mark_complete = die  # type: ignore[method-assign]  # only in this child
    hostlocal.cmd_add(cmd("ADD", "c1", stdin))


def test_add_killed_before_completing_is_taken_over_by_the_retry(tmp_path: Path) -> None:
    stdin = conf(tmp_path)
    p = CTX.Process(target=_add_then_die_before_completing, args=(stdin,))
    p.start()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    store = SqliteStore(str(tmp_path / "crashnet.db"))
    left = store.leases()
    store.close()
    assert len(left) == 2 and all(le.pending for le in left)
    prev = {"ips": [{"address": f"{le.address}/{16 if le.address.version == 4 else 64}"} for le in left]}
    check_stdin = json.dumps(dict(json.loads(stdin), prevResult=prev)).encode()
    with pytest.raises(CniError, match="written by an ADD that did not complete") as exc:
        hostlocal.cmd_check(cmd("CHECK", "c1", check_stdin))
    assert exc.value.code == 112
    res = hostlocal.cmd_add(cmd("ADD", "c1", stdin))
    assert sorted(ip.address for ip in res.ips) == sorted(ip["address"] for ip in prev["ips"])
    hostlocal.cmd_check(cmd("CHECK", "c1", check_stdin))
    # now the ADD completed: a further ADD is the reference's duplicate allocation
    with pytest.raises(CniError, match="duplicate allocation is not allowed") as exc:
        hostlocal.cmd_add(cmd("ADD", "c1", stdin))
    assert exc.value.code == 111
