"""An in-memory :class:`~ipam.store.LeaseStore` for unit tests (the reference's fake_store).

Transactions are real: an exception inside one restores the state from before it, so
tests of "all or nothing" hold against the fake exactly as against the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from .ranges import IPAddress
from .store import Lease, LeaseStore


class MemoryStore:
    """Leases in a dict keyed by address; the round-robin cursors in another."""

    def __init__(self, leases: list[Lease] | None = None) -> None:
        #: address -> lease
        self._leases: dict[IPAddress, Lease] = {le.address: le for le in leases or []}
        #: range_id -> last reserved address
        self._last: dict[str, IPAddress] = {}
        self._lock = threading.Lock()
        #: number of transactions committed (tests assert on rollbacks with it)
        self.commits = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            saved = (dict(self._leases), dict(self._last))
            try:
                yield
            except BaseException:
                self._leases, self._last = saved
                raise
            self.commits += 1

    def reserve(self, lease: Lease, *, cursor: bool = True) -> bool:
        if lease.address in self._leases:
            return False
        self._leases[lease.address] = lease
        if cursor:
            self._last[lease.range_id] = lease.address
        return True

    def last_reserved(self, range_id: str) -> IPAddress | None:
        return self._last.get(range_id)

    def set_last_reserved(self, range_id: str, address: IPAddress) -> None:
        """Test helper: place the round-robin cursor."""
        self._last[range_id] = address

    def holder(self, address: IPAddress) -> Lease | None:
        return self._leases.get(address)

    def find(self, container_id: str, ifname: str) -> list[Lease]:
        return [le for le in self._leases.values()
                if le.container_id == container_id and le.ifname == ifname]

    def release(self, container_id: str, ifname: str) -> list[Lease]:
        gone = self.find(container_id, ifname)
        for le in gone:
            del self._leases[le.address]
        return gone

    def release_address(self, address: IPAddress) -> Lease | None:
        return self._leases.pop(address, None)

    def mark_complete(self, container_id: str, ifname: str, owner: str) -> int:
        marked = 0
        for le in self.find(container_id, ifname):
            if le.pending and le.owner == owner:
                self._leases[le.address] = replace(le, pending=False)
                marked += 1
        return marked

    def count_between(self, first: IPAddress, last: IPAddress) -> int:
        return sum(1 for a in self._leases if a.version == first.version and int(first) <= int(a) <= int(last))

    def leases(self) -> list[Lease]:
        return sorted(self._leases.values(), key=lambda le: (le.address.version, le.address))

    def close(self) -> None:
        pass


def _implements(store: MemoryStore) -> LeaseStore:
    """mypy checks that the fake implements the interface (Go's `var _ Store = ...`)."""
    return store
