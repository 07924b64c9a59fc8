"""The netlink boundary: the only way netctl reads or changes links, addresses, routes,
neighbours and bridge FDB entries.

Two Protocols, one the other's superset:

* :class:`PluginNetlink`: what the plugins do on a container's start path (read a link,
  create a bridge, a veth pair or a VXLAN device, addresses, routes, port options, the
  VXLAN device's neighbour and FDB entries). Implemented by
  :class:`netplugins.nl.pyroute.Pyroute` (pyroute2) and by :class:`netplugins.nl.rtnl.Rtnl`
  (standard library only; why it is kept: docs/netlink.md and bench/README.md, "netlink").
* :class:`HostNetlink`: adds the reads of doctor, graph and netctl (every link, the routes,
  route lookups). Implemented by pyroute2 only.

Results are the plain dataclasses of :mod:`netplugins.nl.types` and of this module, never
pyroute2 messages; every failure of the kernel is :class:`netplugins.nl.types.NetlinkError`.
:func:`netplugins.nl.pyroute.open_host` opens one for everything but the plugins' hot
path, which uses :class:`netplugins.nl.rtnl.Rtnl` (selected in :mod:`netplugins.nl.bridge`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Addr, Link, NetlinkError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a cold plugin process ~3-5 ms; only mypy reads the Protocols
    from typing import Protocol

    class PluginNetlink(Protocol):
        """A netlink socket bound to one network namespace: the plugins' operations.

        Every method raises :class:`NetlinkError` when the kernel refuses (``code`` = errno).
        """

        def close(self) -> None: ...
        def __enter__(self) -> PluginNetlink: ...
        def __exit__(self, *exc: object) -> None: ...

        def get_link(self, name: str) -> Link | None:
            """The link called ``name``, or None when there is none (one request)."""

        def count_ports(self, master: int) -> int:
            """How many links have ``master`` as their master (a bridge's ports)."""

        def add_bridge(self, name: str, mac: str, mtu: int, flags: int) -> None:
            """Create bridge ``name`` with MAC, MTU (0: default) and IFF_* ``flags`` set.
            Raises NetlinkError EEXIST when ``name`` exists."""

        def add_veth(self, name: str, mac: str, mtu: int, master: int, peer_name: str,
                     peer_mac: str, peer_netns_fd: int) -> None:
            """Create a veth pair in one request: ``name`` up, a port of ``master``; the peer
            created down directly in the namespace behind ``peer_netns_fd``.
            Raises NetlinkError EEXIST (either name), EXFULL (the bridge has no port left)."""

        def set_link(self, index: int, *, flags: int = 0, change: int = 0, mac: str = "",
                     mtu: int = 0, master: int = 0) -> None:
            """Change IFF_* bits ``change`` to ``flags``; MAC, MTU, master when given."""

        def set_alias(self, index: int, alias: str) -> None:
            """The link's alias (``ip link set DEV alias TEXT``)."""

        def set_arp_notify(self, index: int) -> None:
            """net.ipv4.conf.<link>.arp_notify=1 through netlink (no need to be in its namespace)."""

        def set_brport(self, index: int, hairpin: bool, isolated: bool) -> None:
            """Bridge port options of a port link."""

        def del_link(self, name: str) -> None:
            """Delete link ``name``. Raises NetlinkError ENODEV when it does not exist."""

        def addresses(self, index: int = 0) -> list[Addr]:
            """The addresses of link ``index`` (0: of every link)."""

        def add_addr(self, index: int, cidr: str, nodad: bool = False) -> None:
            """Add ``cidr`` (an IPv4 one with its broadcast). Raises NetlinkError EEXIST."""

        def del_addr(self, index: int, cidr: str) -> None:
            """Remove ``cidr``. Raises NetlinkError EADDRNOTAVAIL when it is not there."""

        def add_route(self, dst: str, gateway: str | None, oif: int) -> None:
            """A static route of the main table. Raises NetlinkError EEXIST."""

        def route_destinations(self) -> set[str]:
            """Destinations (normalised networks) of the main table's routes."""

        def neighbours(self, index: int = 0) -> list[Neighbour]:
            """IPv4/IPv6 neighbour entries of link ``index`` (0: every link), without NOARP ones."""

        def fdb(self, index: int) -> list[FdbEntry]:
            """The bridge FDB entries of link ``index`` (a VXLAN device's remote entries)."""

        def add_vxlan(self, name: str, vni: int, local: str, port: int) -> None:
            """A VXLAN device without learning and with ARP proxy. Raises NetlinkError EEXIST."""

        def replace_fdb(self, index: int, mac: str, dst: str) -> None:
            """``bridge fdb replace MAC dev DEV dst DST self permanent``."""

        def del_fdb(self, index: int, mac: str, dst: str) -> None:
            """``bridge fdb del MAC dev DEV dst DST self``."""

        def replace_neigh(self, index: int, ip: str, mac: str) -> None:
            """``ip neigh replace IP lladdr MAC dev DEV nud permanent``."""

        def del_neigh(self, index: int, ip: str) -> None:
            """``ip neigh del IP dev DEV``."""

    class HostNetlink(PluginNetlink, Protocol):
        """The plugins' operations plus what doctor, graph and netctl read."""

        def __enter__(self) -> HostNetlink: ...

        def links(self) -> list[Link]:
            """Every link of the namespace, by index."""

        def routes(self) -> list[Route]:
            """The routes of the main table (what ``ip route show`` lists)."""

        def route_get(self, dst: str) -> Route:
            """Where the kernel sends a packet to ``dst`` (``ip route get``).
            Raises NetlinkError (ENETUNREACH, EHOSTUNREACH, ...) when it cannot."""


@dataclass(frozen=True)
class Route:
    """A route, or the answer of a route lookup."""

    dst: str                  # "default" or a CIDR (a lookup: the address asked for)
    oif: int = 0              # output link index, 0 if none
    gateway: str | None = None
    #: "unicast", "local", "broadcast", "unreachable", "prohibit", "blackhole", ...
    type: str = "unicast"
    prefsrc: str | None = None
    family: int = 2           # AF_INET or AF_INET6 (10)


@dataclass(frozen=True)
class Neighbour:
    """An ARP/NDP entry; ``state`` as ``ip neigh`` names it (REACHABLE, STALE, PERMANENT...)."""

    index: int
    ip: str
    state: str
    lladdr: str | None = None


@dataclass(frozen=True)
class FdbEntry:
    """A bridge FDB entry: ``dst`` is the remote VTEP of a VXLAN entry (None otherwise)."""

    index: int
    mac: str
    dst: str | None = None


__all__ = ["Addr", "FdbEntry", "Link", "Neighbour", "NetlinkError", "Route"]
