"""The worker pool's refill policy (netplugins/daemon.py WorkerPool), without forking."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from netplugins.daemon import WorkerPool


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    a, b = socket.socketpair()
    p = WorkerPool(a, spare=4, burst=12, limit=20)
    try:
        yield p
    finally:
        a.close()
        b.close()


def _have(p: WorkerPool, idle: set[int], busy: set[int]) -> None:
    p.idle = set(idle)
    p.workers = set(idle) | set(busy)


def _take(p: WorkerPool, *pids: int) -> None:
    os.write(p._taken_w, b"".join(pid.to_bytes(4, "little") for pid in pids))
    p.taken()


def test_a_busy_worker_is_replaced_when_it_exits_not_during_its_call(pool: WorkerPool) -> None:
    _have(pool, {1, 2, 3, 4}, set())
    assert not pool.wanted()
    _take(pool, 1)
    assert pool.idle == {2, 3, 4} and not pool.wanted()  # 3 idle >= half of 4
    assert pool.reaped(1) and pool.served == 1
    assert pool.wanted()  # 3 workers < 4: now fork


def test_a_burst_forks_at_once_and_grows_the_target(pool: WorkerPool) -> None:
    _have(pool, {1, 2, 3, 4}, set())
    _take(pool, 1, 2)
    assert pool.wanted() is False  # 2 idle = half the target
    _take(pool, 3, 4)
    assert pool.idle == set() and pool.target == 8 and pool.wanted()
    _have(pool, {5, 6, 7, 8, 9, 10, 11, 12}, {1, 2, 3, 4})
    _take(pool, *range(5, 13))
    assert pool.target == 12  # capped at burst
    _have(pool, set(range(13, 33)), set())  # 20 workers: the limit
    pool.idle = set()
    assert not pool.wanted()


def test_after_a_quiet_spell_the_extra_idle_workers_go(pool: WorkerPool) -> None:
    killed: list[int] = []
    pool.kill = lambda pid, sig: killed.append(pid)  # type: ignore[method-assign,assignment]
    _have(pool, {1, 2, 3, 4}, set())
    _take(pool, 1, 2, 3, 4)
    assert pool.target == 8
    _have(pool, set(range(10, 18)), set())
    pool._drained_at -= pool.BURST_HOLD + 1
    pool._settle()
    assert pool.target == 4 and len(pool.idle) == 4 and sorted(killed) == list(range(14, 18))


def test_a_stranger_pid_on_the_pipe_is_ignored(pool: WorkerPool) -> None:
    _have(pool, {1, 2, 3, 4}, set())
    _take(pool, 99)
    assert pool.idle == {1, 2, 3, 4}
    assert not pool.reaped(99)
