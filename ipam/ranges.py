"""Address ranges and range sets (host-local's ``ranges`` model), parsed and validated.

A :class:`Range` is one ``{subnet, rangeStart, rangeEnd, gateway}`` object with its
defaults filled in as the reference does (``backend/allocator/range.go`` Canonicalize):
gateway = network + 1, rangeStart = network + 1, rangeEnd = the last address, minus one
for IPv4 (the broadcast address). A :class:`RangeSet` is a list of disjoint ranges of one
family; a network config holds one range set per address it hands out (dual stack = two).

Where we are stricter than the reference (each is a clear code-7 error instead of a
surprising allocation): a subnet must be written as its network address; range sets of
one config must not share a *subnet* (the reference only compares start..end, which lets
two sets hand out two addresses of the same subnet).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

# the standard library's ipaddress, not netaddr: importing netaddr costs ~20 ms in every
# plugin process (its EUI/OUI tables), more than a whole host-local ADD
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_interface

from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def address(value: str | int, version: int | None = None) -> IPAddress:
    """An address from its text, or from an integer of family ``version`` (4 or 6).

    Raises:
        ValueError: not an address.
    """
    if version is None:
        return ip_address(value)
    return IPv4Address(value) if version == 4 else IPv6Address(value)

#: The smallest subnets we allocate from: a /30 (v4) or /126 (v6) leaves one address
#: besides the network, the gateway and (v4) the broadcast address.
MAX_PREFIXLEN = {4: 30, 6: 126}


@dataclass(frozen=True)
class Range:
    """One allocatable range inside a subnet (all bounds inclusive)."""

    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress

    @property
    def version(self) -> int:
        return int(self.subnet.version)

    def __str__(self) -> str:
        # the reference prints a range as start-end ("10.1.0.1-10.1.0.254")
        return f"{self.start}-{self.end}"

    def contains(self, addr: IPAddress) -> bool:
        """True when ``addr`` lies between rangeStart and rangeEnd."""
        return addr.version == self.version and int(self.start) <= int(addr) <= int(self.end)

    def in_subnet(self, addr: IPAddress) -> bool:
        """True when ``addr`` lies in this range's subnet (rangeStart..End aside)."""
        return addr.version == self.version and addr in self.subnet

    def is_reserved(self, addr: IPAddress) -> bool:
        """The network address, the gateway and the IPv4 broadcast are never handed out."""
        if addr == self.gateway or addr == self.subnet.network_address:
            return True
        return self.version == 4 and addr == self.subnet.broadcast_address

    def capacity(self) -> int:
        """How many addresses of start..end can be leased."""
        total = int(self.end) - int(self.start) + 1
        reserved = {self.gateway, self.subnet.network_address}
        if self.version == 4:
            reserved.add(self.subnet.broadcast_address)
        return total - sum(1 for a in reserved if self.contains(a))

    def to_dict(self) -> dict[str, str]:
        """The config form, with every default spelled out."""
        return {"subnet": str(self.subnet), "rangeStart": str(self.start),
                "rangeEnd": str(self.end), "gateway": str(self.gateway)}


@dataclass(frozen=True)
class RangeSet:
    """Disjoint ranges of one family; one lease per attachment comes from each set."""

    ranges: tuple[Range, ...]

    @property
    def version(self) -> int:
        return self.ranges[0].version

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)

    def __iter__(self) -> Iterator[Range]:
        return iter(self.ranges)

    def subnets(self) -> str:
        """The set's distinct subnets, for messages ("10.1.0.0/24,10.2.0.0/24")."""
        seen: list[str] = []
        for r in self.ranges:
            if str(r.subnet) not in seen:
                seen.append(str(r.subnet))
        return ",".join(seen)

    def range_for(self, addr: IPAddress) -> Range | None:
        """The range whose *subnet* holds ``addr`` (a requested address may lie outside
        rangeStart..rangeEnd, as Docker allows static addresses outside ``--ip-range``)."""
        for r in self.ranges:
            if r.contains(addr):
                return r
        for r in self.ranges:
            if r.in_subnet(addr):
                return r
        return None

    def overlaps(self, other: RangeSet) -> bool:
        """True when a subnet of this set overlaps a subnet of ``other``."""
        return any(_nets_overlap(a.subnet, b.subnet) for a in self.ranges for b in other.ranges)

    def capacity(self) -> int:
        return sum(r.capacity() for r in self.ranges)


def _nets_overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and int(a.network_address) <= int(b.broadcast_address) \
        and int(b.network_address) <= int(a.broadcast_address)


def parse_address(text: Any, what: str) -> IPAddress:
    """A plain IPv4/IPv6 address.

    Raises:
        ConfigError: naming ``what`` when ``text`` is not an address.
    """
    # "%": ipaddress takes an IPv6 scope ("fe80::1%eth0"), which no lease or route can use
    if not isinstance(text, str) or not text or "/" in text or "%" in text:
        raise ConfigError(f"invalid {what} {text!r}: not an IP address")
    try:
        return ip_address(text)
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}: not an IP address") from None


def parse_subnet(text: Any, what: str = "subnet") -> IPNetwork:
    """A CIDR written as its network address ("10.1.0.0/24").

    Raises:
        ConfigError: when ``text`` is not a CIDR or has host bits set.
    """
    if not isinstance(text, str) or "/" not in text:
        raise ConfigError(f"invalid {what} {text!r}: expected CIDR notation such as 10.1.0.0/24")
    try:
        if "%" in text:  # an IPv6 scope, which ipaddress would take
            raise ValueError(text)
        iface = ip_interface(text)
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}: not a CIDR") from None
    if iface.ip != iface.network.network_address:
        raise ConfigError(f"invalid {what} {text}: it is not a network address "
                          f"(did you mean {iface.network}?)")
    return iface.network


def parse_range(obj: Any, where: str) -> Range:
    """One ``{subnet, rangeStart, rangeEnd, gateway}`` object, defaults filled in.

    Raises:
        ConfigError: prefixed with ``where`` ("range set 0") for every invalid field.
    """
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: a range must be an object with a subnet, got {obj!r}")
    if not obj.get("subnet"):
        raise ConfigError(f"{where}: a range needs a subnet")
    try:
        return _build_range(obj)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err.msg}", err.details) from None


def _build_range(obj: Mapping[str, Any]) -> Range:
    subnet = parse_subnet(obj["subnet"])
    version = int(subnet.version)
    if subnet.prefixlen > MAX_PREFIXLEN[version]:
        raise ConfigError(f"network {subnet} too small to allocate from")

    def optional_addr(key: str, default: IPAddress) -> IPAddress:
        value = obj.get(key)
        if value is None or value == "":
            return default
        addr = parse_address(value, key)
        if addr.version != version or addr not in subnet:
            raise ConfigError(f"{key} {addr} is outside subnet {subnet}")
        return addr

    first = subnet.network_address + 1
    last = subnet.broadcast_address - 1 if version == 4 else subnet.broadcast_address
    gateway = optional_addr("gateway", first)
    if gateway == subnet.network_address or (version == 4 and gateway == subnet.broadcast_address):
        raise ConfigError(f"gateway {gateway} is the network or broadcast address of {subnet}")
    start = optional_addr("rangeStart", first)
    end = optional_addr("rangeEnd", last)
    if int(start) > int(end):
        raise ConfigError(f"rangeStart {start} is after rangeEnd {end}")
    rng = Range(subnet=subnet, start=start, end=end, gateway=gateway)
    if rng.capacity() < 1:
        raise ConfigError(f"range {rng} of {subnet} has no address left once the network, "
                          "gateway and broadcast addresses are set aside")
    return rng


def parse_range_set(obj: Any, index: int) -> RangeSet:
    """A list of ranges of one family that do not overlap.

    Raises:
        ConfigError: "invalid range set N: ..." for an empty or invalid set.
    """
    where = f"invalid range set {index}"
    if not isinstance(obj, list) or not obj:
        raise ConfigError(f"{where}: a range set must be a non-empty list of ranges")
    ranges = tuple(parse_range(item, where) for item in obj)
    if len({r.version for r in ranges}) > 1:
        raise ConfigError(f"{where}: it mixes IPv4 and IPv6 ranges")
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if int(a.start) <= int(b.end) and int(b.start) <= int(a.end):
                raise ConfigError(f"{where}: ranges {a} and {b} overlap")
    return RangeSet(ranges)


def parse_range_sets(objs: Iterable[Any]) -> tuple[RangeSet, ...]:
    """Every range set of a config; subnets of different sets must not overlap.

    Raises:
        ConfigError: for an invalid set, or "range set I (...) overlaps with range set J (...)".
    """
    sets = tuple(parse_range_set(obj, i) for i, obj in enumerate(objs))
    if not sets:
        raise ConfigError("no IP ranges specified")
    for i, a in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if a.overlaps(sets[j]):
                raise ConfigError(f"range set {i} ({a.subnets()}) overlaps with "
                                  f"range set {j} ({sets[j].subnets()})")
    return sets
