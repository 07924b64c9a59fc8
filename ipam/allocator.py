"""Allocation policy over a :class:`~ipam.store.LeaseStore` (pure: no I/O of its own).

The policy follows host-local's (``backend/allocator/allocator.go``):

* a requested address must lie in one of the set's subnets and must not be the network,
  gateway or IPv4 broadcast address; if another attachment holds it, the error names it;
* otherwise walk round-robin from the address after the one last reserved for this range
  set, through every range of the set, wrapping once; skip the network, gateway and
  broadcast addresses. Round robin means a crash-looping container does not get its old
  address back until the whole range has been used (the reference's reasoning);
* an attachment that already holds a completed lease in the set gets the reference's
  "duplicate allocation is not allowed" error.

Our addition, the answer to "same ADD again after a crash": an ADD writes its leases as
*pending* and marks them complete once it has its result. A pending lease whose owner
process is dead belongs to an ADD that never completed; a new ADD for the same attachment
takes it over (same address, unless it requests another one), instead of failing with
"duplicate allocation". A pending lease whose owner still runs means two ADDs for one
attachment at once: "try again" (code 11).

Call :meth:`Allocator.allocate` inside ``store.transaction()``; an exception rolls back
everything the transaction did, which is how host-local's ADD is all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import AddInProgress, AddressInUse, ConfigError, DuplicateAllocation, RangeExhausted
from .owner import owner_alive
from .ranges import IPAddress, Range, RangeSet, address
from .store import Lease, LeaseStore

#: after this many taken candidates in a row, ask the store whether the set is full
#: (one indexed count) instead of trying every remaining address of a full /16
_COUNT_EVERY = 64


@dataclass(frozen=True)
class Allocation:
    """An address handed out from a range set."""

    address: IPAddress
    range: Range
    #: True when the address came from the pending lease of an ADD that never completed
    adopted: bool = False

    @property
    def cidr(self) -> str:
        """The address with the subnet's prefix length ("10.1.0.5/24")."""
        return f"{self.address}/{self.range.subnet.prefixlen}"

    @property
    def gateway(self) -> IPAddress:
        return self.range.gateway


class Allocator:
    """Hands out addresses of one range set for one network."""

    def __init__(
        self,
        range_set: RangeSet,
        store: LeaseStore,
        range_id: str,
        *,
        network: str = "",
        owner: str = "",
        is_alive: Callable[[str], bool] = owner_alive,
    ) -> None:
        self.range_set = range_set
        self.store = store
        #: the round-robin cursor key (host-local passes the set's subnets)
        self.range_id = range_id
        #: the network name, for messages
        self.network = network
        #: the token of the ADD this allocator works for (see ipam.owner)
        self.owner = owner
        self._is_alive = is_alive

    def allocate(self, container_id: str, ifname: str,
                 requested: IPAddress | None = None) -> Allocation:
        """Lease one address of the set to (container_id, ifname), as a pending lease.

        Raises:
            DuplicateAllocation: the attachment already holds a completed lease in the set.
            AddInProgress: another running ADD holds a pending lease for the attachment.
            ConfigError: ``requested`` is outside the set's subnets, or a reserved address.
            AddressInUse: ``requested`` is leased to another attachment.
            RangeExhausted: no free address is left.
        """
        adopted = self._take_over(container_id, ifname, requested)
        if adopted is not None:
            return adopted
        if requested is not None:
            return self._take_requested(container_id, ifname, requested)
        return self._take_next(container_id, ifname)

    def _lease(self, container_id: str, ifname: str, addr: IPAddress) -> Lease:
        return Lease(address=addr, container_id=container_id, ifname=ifname,
                     range_id=self.range_id, pending=True, owner=self.owner)

    def _take_over(self, container_id: str, ifname: str,
                   requested: IPAddress | None) -> Allocation | None:
        """Deal with leases the attachment already holds in this set (see module doc)."""
        held = [le for le in self.store.find(container_id, ifname)
                if self.range_set.range_for(le.address) is not None]
        for le in held:
            if not le.pending or le.owner == self.owner:
                raise DuplicateAllocation(
                    f"{le.address} has been allocated to {container_id}, "
                    "duplicate allocation is not allowed")
            if self._is_alive(le.owner):
                raise AddInProgress(
                    f"another ADD for container {container_id} interface {ifname} is still "
                    f"running (it holds {le.address} on network {self.network!r}); try again",
                    f"owner {le.owner}")
        for le in held:
            # the ADD that wrote it died before it had its result: nobody ever got this
            # address, so it is ours to give again (or to drop if another one is asked)
            self.store.release_address(le.address)
            if requested is None or requested == le.address:
                rng = self.range_set.range_for(le.address)
                assert rng is not None  # filtered above
                self.store.reserve(self._lease(container_id, ifname, le.address),
                                   cursor=requested is None)
                return Allocation(le.address, rng, adopted=True)
        return None

    def _take_requested(self, container_id: str, ifname: str, addr: IPAddress) -> Allocation:
        rng = self.range_set.range_for(addr)
        if rng is None:
            raise ConfigError(
                f"invalid address {addr}: it does not belong to any of this network's subnets")
        if addr == rng.gateway:
            raise ConfigError(f"invalid address {addr}: it is the gateway of subnet {rng.subnet}")
        if addr == rng.subnet.network_address:
            raise ConfigError(f"invalid address {addr}: it is the network address of {rng.subnet}")
        if rng.is_reserved(addr):
            raise ConfigError(f"invalid address {addr}: it is the broadcast address of {rng.subnet}")
        # a static address leaves the round-robin cursor where it was (Docker: .2, .3, a
        # static .50, then .4), so dynamic containers do not jump past it
        if not self.store.reserve(self._lease(container_id, ifname, addr), cursor=False):
            holder = self.store.holder(addr)
            who = (f"container {holder.container_id} (interface {holder.ifname})"
                   if holder is not None else "another container")
            raise AddressInUse(f"requested address {addr} is already in use by {who} "
                               f"on network {self.network!r}")
        return Allocation(addr, rng)

    def _take_next(self, container_id: str, ifname: str) -> Allocation:
        version = self.range_set.version
        misses = 0
        for value, rng in self._candidates():
            addr = address(value, version)
            if rng.is_reserved(addr):
                continue
            if self.store.reserve(self._lease(container_id, ifname, addr)):
                return Allocation(addr, rng)
            misses += 1
            if misses % _COUNT_EVERY == 0 and self._full():
                break
        raise RangeExhausted(
            f"no IP addresses available in range set: {self.range_set} "
            f"(network {self.network!r}, subnet {self.range_set.subnets()})")

    def _full(self) -> bool:
        leased = sum(self.store.count_between(r.start, r.end) for r in self.range_set)
        return leased >= self.range_set.capacity()

    def _candidates(self) -> Iterator[tuple[int, Range]]:
        """Every address of the set once, starting after the last reserved one."""
        ranges = self.range_set.ranges
        idx, first = 0, int(ranges[0].start)
        last = self.store.last_reserved(self.range_id)
        if last is not None:
            for i, rng in enumerate(ranges):
                if rng.contains(last):
                    # a stale cursor (ranges changed) just loses round robin once
                    idx, first = i, int(last) + 1
                    break
        count = len(ranges)
        for step in range(count + 1):
            rng = ranges[(idx + step) % count]
            lo, hi = int(rng.start), int(rng.end)
            if step == 0:
                lo = max(lo, first)      # from the cursor to the end of its range
            elif step == count:
                hi = min(hi, first - 1)  # wrapped around: the part before the cursor
            for value in range(lo, hi + 1):
                yield value, rng
