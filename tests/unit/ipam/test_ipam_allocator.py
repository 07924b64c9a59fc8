"""Allocation policy against the in-memory store (the reference's allocator_test.go, table-driven)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ipam.allocator import Allocator
from ipam.errors import (
    AddInProgress,
    AddressInUse,
    ConfigError,
    DuplicateAllocation,
    RangeExhausted,
)
from ipam.memory import MemoryStore
from ipam.ranges import RangeSet, parse_range_set
from ipam.ranges import address as IPAddress
from ipam.store import Lease


def rset(*ranges: dict) -> RangeSet:
    return parse_range_set(list(ranges), 0)


def alloc(rs: RangeSet, store: MemoryStore, cid: str, requested: str | None = None,
          owner: str = "me", alive: bool = False) -> str:
    with store.transaction():
        a = Allocator(rs, store, "0", network="net1", owner=owner, is_alive=lambda _o: alive)
        res = a.allocate(cid, "eth0", IPAddress(requested) if requested else None)
    return res.cidr


@dataclass
class Case:
    name: str
    ranges: list[dict]
    taken: list[str] = field(default_factory=list)
    last: str | None = None
    expect: list[str] = field(default_factory=list)


CASES = [
    Case("empty /24 starts at .2 (.1 is the gateway)",
         [{"subnet": "10.1.0.0/24"}], expect=["10.1.0.2/24", "10.1.0.3/24"]),
    Case("round robin continues after the last reserved",
         [{"subnet": "10.1.0.0/24"}], last="10.1.0.5", expect=["10.1.0.6/24", "10.1.0.7/24"]),
    Case("taken addresses are skipped",
         [{"subnet": "10.1.0.0/24"}], taken=["10.1.0.2", "10.1.0.3"], expect=["10.1.0.4/24"]),
    Case("wraps to rangeStart after rangeEnd, skipping the gateway",
         [{"subnet": "10.1.0.0/24"}], last="10.1.0.254", expect=["10.1.0.2/24"]),
    Case("a stale cursor outside the set starts from rangeStart",
         [{"subnet": "10.1.0.0/24"}], last="10.9.9.9", expect=["10.1.0.2/24"]),
    Case("a gateway at the end of the range is skipped",
         [{"subnet": "10.1.0.0/29", "gateway": "10.1.0.6"}], last="10.1.0.4",
         expect=["10.1.0.5/29", "10.1.0.1/29", "10.1.0.2/29"]),
    Case("network and broadcast never handed out even inside start..end",
         [{"subnet": "10.1.0.0/29", "rangeStart": "10.1.0.0", "rangeEnd": "10.1.0.7"}], last="10.1.0.5",
         expect=["10.1.0.6/29", "10.1.0.2/29"]),
    Case("multi-range set moves to the next range",
         [{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.11"},
          {"subnet": "10.2.0.0/24", "rangeStart": "10.2.0.20", "rangeEnd": "10.2.0.21"}],
         last="10.1.0.11", expect=["10.2.0.20/24", "10.2.0.21/24", "10.1.0.10/24"]),
    Case("multi-range set wraps from the last range to the first",
         [{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.11"},
          {"subnet": "10.2.0.0/24", "rangeStart": "10.2.0.20", "rangeEnd": "10.2.0.21"}],
         last="10.2.0.21", expect=["10.1.0.10/24", "10.1.0.11/24", "10.2.0.20/24"]),
    Case("IPv6 uses the last address too",
         [{"subnet": "fd00::/125"}], last="fd00::6", expect=["fd00::7/125", "fd00::2/125"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_allocation_order(case: Case) -> None:
    rs = rset(*case.ranges)
    store = MemoryStore([Lease(IPAddress(a), f"other{i}", "eth0") for i, a in enumerate(case.taken)])
    if case.last:
        store.set_last_reserved("0", IPAddress(case.last))
    got = [alloc(rs, store, f"c{i}") for i in range(len(case.expect))]
    assert got == case.expect


def test_exhaustion_names_network_and_range() -> None:
    rs = rset({"subnet": "10.1.0.0/29"})
    store = MemoryStore()
    got = {alloc(rs, store, f"c{i}") for i in range(5)}
    assert len(got) == 5
    with pytest.raises(RangeExhausted) as exc:
        alloc(rs, store, "late")
    assert str(exc.value) == ("no IP addresses available in range set: 10.1.0.1-10.1.0.6 "
                              "(network 'net1', subnet 10.1.0.0/29)")
    assert exc.value.code == 110
    # a release frees exactly one address again
    store.release("c3", "eth0")
    assert alloc(rs, store, "late") in got


def test_exhaustion_of_a_large_range_is_detected_without_walking_it_all() -> None:
    rs = rset({"subnet": "10.1.0.0/20"})
    store = MemoryStore()
    calls = []
    real = store.reserve

    def counting(lease: Lease) -> bool:
        calls.append(lease.address)
        return real(lease)

    for value in range(int(IPAddress("10.1.0.2")), int(IPAddress("10.1.15.254")) + 1):
        store.reserve(Lease(IPAddress(value, 4), "x", "eth0"))
    store.reserve = counting  # type: ignore[method-assign]
    with pytest.raises(RangeExhausted):
        alloc(rs, store, "late")
    assert len(calls) <= 64


@pytest.mark.parametrize(
    ("requested", "error", "message"),
    [
        ("10.1.0.1", ConfigError, "invalid address 10.1.0.1: it is the gateway of subnet 10.1.0.0/24"),
        ("10.1.0.0", ConfigError, "invalid address 10.1.0.0: it is the network address of 10.1.0.0/24"),
        ("10.1.0.255", ConfigError, "invalid address 10.1.0.255: it is the broadcast address of 10.1.0.0/24"),
        ("10.9.9.9", ConfigError, "invalid address 10.9.9.9: it does not belong to any of this network's subnets"),
        ("10.1.0.7", AddressInUse,
         "requested address 10.1.0.7 is already in use by container holder (interface eth1) on network 'net1'"),
    ],
)
def test_bad_requests(requested: str, error: type[Exception], message: str) -> None:
    rs = rset({"subnet": "10.1.0.0/24"})
    store = MemoryStore([Lease(IPAddress("10.1.0.7"), "holder", "eth1")])
    with pytest.raises(error) as exc:
        alloc(rs, store, "c1", requested)
    assert str(exc.value) == message
    assert [le.container_id for le in store.leases()] == ["holder"]


def test_requested_address_outside_range_but_inside_subnet() -> None:
    rs = rset({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100", "rangeEnd": "10.1.0.200"})
    store = MemoryStore()
    assert alloc(rs, store, "static", "10.1.0.50") == "10.1.0.50/24"
    # and it moves the round-robin cursor only within the range (stale cursor = start over)
    assert alloc(rs, store, "dyn") == "10.1.0.100/24"


def test_duplicate_allocation() -> None:
    rs = rset({"subnet": "10.1.0.0/24"})
    store = MemoryStore()
    alloc(rs, store, "c1")
    store.mark_complete("c1", "eth0", "me")
    for requested in (None, "10.1.0.2", "10.1.0.9"):
        with pytest.raises(DuplicateAllocation) as exc:
            alloc(rs, store, "c1", requested, owner="second-add")
        assert str(exc.value) == "10.1.0.2 has been allocated to c1, duplicate allocation is not allowed"
    # another interface of the same container is another attachment
    with store.transaction():
        got = Allocator(rs, store, "0", owner="x").allocate("c1", "eth1")
    assert str(got.address) == "10.1.0.3"


def test_pending_lease_of_a_dead_add_is_taken_over() -> None:
    rs = rset({"subnet": "10.1.0.0/24"})
    store = MemoryStore([Lease(IPAddress("10.1.0.9"), "c1", "eth0", "0", pending=True, owner="dead")])
    with store.transaction():
        got = Allocator(rs, store, "0", owner="new", is_alive=lambda o: False).allocate("c1", "eth0")
    assert (str(got.address), got.adopted) == ("10.1.0.9", True)
    (lease,) = store.find("c1", "eth0")
    assert (lease.pending, lease.owner) == (True, "new")


def test_pending_lease_of_a_dead_add_is_dropped_when_another_address_is_requested() -> None:
    rs = rset({"subnet": "10.1.0.0/24"})
    store = MemoryStore([Lease(IPAddress("10.1.0.9"), "c1", "eth0", "0", pending=True, owner="dead")])
    assert alloc(rs, store, "c1", "10.1.0.20") == "10.1.0.20/24"
    assert [str(le.address) for le in store.find("c1", "eth0")] == ["10.1.0.20"]


def test_pending_lease_of_a_running_add_means_try_again() -> None:
    rs = rset({"subnet": "10.1.0.0/24"})
    store = MemoryStore([Lease(IPAddress("10.1.0.9"), "c1", "eth0", "0", pending=True, owner="running")])
    with pytest.raises(AddInProgress) as exc:
        alloc(rs, store, "c1", alive=True)
    assert exc.value.code == 11
    assert "still running" in str(exc.value)


def test_leases_in_other_range_sets_do_not_count_as_duplicates() -> None:
    v4 = rset({"subnet": "10.1.0.0/24"})
    v6 = parse_range_set([{"subnet": "fd00::/64"}], 1)
    store = MemoryStore()
    with store.transaction():
        a = Allocator(v4, store, "0", owner="o").allocate("c1", "eth0")
        b = Allocator(v6, store, "1", owner="o").allocate("c1", "eth0")
    assert (a.cidr, b.cidr) == ("10.1.0.2/24", "fd00::2/64")
    assert store.last_reserved("0") == IPAddress("10.1.0.2")
    assert store.last_reserved("1") == IPAddress("fd00::2")


def test_failed_transaction_leaves_nothing() -> None:
    v4 = rset({"subnet": "10.1.0.0/24"})
    full = parse_range_set([{"subnet": "10.2.0.0/30"}], 1)
    store = MemoryStore([Lease(IPAddress("10.2.0.2"), "x", "eth0")])
    with pytest.raises(RangeExhausted), store.transaction():
        Allocator(v4, store, "0", owner="o").allocate("c1", "eth0")
        Allocator(full, store, "1", owner="o").allocate("c1", "eth0")
    assert store.find("c1", "eth0") == []
    assert store.last_reserved("0") is None


def test_static_address_does_not_move_the_cursor() -> None:
    """Docker: .2, .3, a static .50, then .4 (not .51)."""
    rs = rset({"subnet": "10.9.0.0/24"})
    store = MemoryStore()
    assert alloc(rs, store, "a") == "10.9.0.2/24"
    assert alloc(rs, store, "b") == "10.9.0.3/24"
    assert alloc(rs, store, "static", requested="10.9.0.50") == "10.9.0.50/24"
    assert alloc(rs, store, "c") == "10.9.0.4/24"
