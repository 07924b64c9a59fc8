"""The lease store interface: what the allocator needs from persistence, nothing more.

Two implementations: :class:`ipam.sqlstore.SqliteStore` (the real one, one database per
network) and :class:`ipam.memory.MemoryStore` (the unit-test fake). The allocator holds
all policy; a store only answers "is this address free, and if so take it" atomically
inside :meth:`LeaseStore.transaction`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from .ranges import IPAddress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    # at run time LeaseStore is documentation only (nothing checks isinstance against it),
    # and typing costs every plugin process ~3 ms
    Protocol = object


@dataclass(frozen=True)
class Lease:
    """One address held by one attachment (container ID + interface name)."""

    address: IPAddress
    container_id: str
    ifname: str
    #: the range set that handed it out (host-local uses its subnets, "10.1.0.0/24"):
    #: keys the round-robin cursor
    range_id: str = ""
    #: True from the moment an ADD reserved it until that ADD produced its result;
    #: a pending lease whose owner process died belongs to an ADD that never completed
    pending: bool = False
    #: the ADD that wrote it ("pid:starttime:nonce", see :mod:`ipam.owner`)
    owner: str = ""


class LeaseStore(Protocol):
    """Persistence for the leases of one network."""

    def transaction(self) -> AbstractContextManager[None]:
        """An exclusive write section: commit on normal exit, roll back on an exception.

        Every allocation runs inside one, so concurrent ADDs never pick the same address and
        an ADD that fails half-way leaves nothing behind. Not re-entrant.

        Raises:
            StoreBusy: when another process holds the store longer than the busy timeout.
            StoreError: when the store cannot be read or written.
        """
        ...

    def reserve(self, lease: Lease, *, cursor: bool = True) -> bool:
        """Take ``lease.address`` unless it is already leased; with ``cursor``, record it as
        the last address reserved for ``lease.range_id``. Returns False when the address is
        taken."""
        ...

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """The address last reserved for ``range_id`` (round-robin cursor), if any."""
        ...

    def holder(self, address: IPAddress) -> Lease | None:
        """The lease on ``address``, if any (an index look-up)."""
        ...

    def find(self, container_id: str, ifname: str) -> list[Lease]:
        """The leases of one attachment (an index look-up)."""
        ...

    def release(self, container_id: str, ifname: str) -> list[Lease]:
        """Drop every lease of one attachment; return what was dropped (maybe nothing)."""
        ...

    def release_address(self, address: IPAddress) -> Lease | None:
        """Drop the lease on one address; return it, or None when it was free."""
        ...

    def mark_complete(self, container_id: str, ifname: str, owner: str) -> int:
        """Mark the pending leases ``owner`` wrote for this attachment as complete;
        return how many were marked."""
        ...

    def count_between(self, first: IPAddress, last: IPAddress) -> int:
        """How many leased addresses lie in ``first..last`` (inclusive, one family)."""
        ...

    def leases(self) -> list[Lease]:
        """Every lease (GC and inspection walk them all; ADD/DEL/CHECK never do)."""
        ...

    def close(self) -> None:
        """Release the store's resources; safe to call twice."""
        ...
