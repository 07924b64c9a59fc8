"""A fake host for the netlink boundary (netplugins.nl.host.HostNetlink), in memory.

Unit tests of doctor, graph and the overlay give it the links, addresses, routes,
neighbours and FDB entries of the setup they describe, instead of faking ``ip -j`` output;
writes change the fake's state and are recorded in ``calls``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace

from netplugins.nl.host import FdbEntry, Neighbour, Route
from netplugins.nl.types import IFF_LOWER_UP, IFF_UP, Addr, Link, NetlinkError


def link(index: int, name: str, kind: str = "", *, up: bool = True, master: int = 0, mtu: int = 1500,
         mac: str = "", isolated: bool | None = None, port_state: str | None = None, alias: str = "") -> Link:
    """A Link as the kernel would report it (up means UP and LOWER_UP)."""
    return Link(index=index, name=name, flags=(IFF_UP | IFF_LOWER_UP) if up else 0, mac=mac or f"02:00:00:00:00:{index:02x}",
                mtu=mtu, kind=kind, master=master, peer=0, alias=alias, isolated=isolated, port_state=port_state)


@dataclass
class FakeHost:
    """What one namespace holds; ``lookups`` maps a destination to its route or errno."""

    links_: list[Link] = field(default_factory=list)
    addrs: list[Addr] = field(default_factory=list)
    routes_: list[Route] = field(default_factory=list)
    neigh: list[Neighbour] = field(default_factory=list)
    fdb_: list[FdbEntry] = field(default_factory=list)
    lookups: dict[str, Route | int] = field(default_factory=dict)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ----------------------------------------------------------------------------
    def get_link(self, name: str) -> Link | None:
        return next((lk for lk in self.links_ if lk.name == name), None)

    def links(self) -> list[Link]:
        return sorted(self.links_, key=lambda lk: lk.index)

    def count_ports(self, master: int) -> int:
        return sum(1 for lk in self.links_ if lk.master == master)

    def addresses(self, index: int = 0) -> list[Addr]:
        return [a for a in self.addrs if not index or a.index == index]

    def routes(self) -> list[Route]:
        return list(self.routes_)

    def route_destinations(self) -> set[str]:
        return {("::/0" if r.family == 10 else "0.0.0.0/0") if r.dst == "default" else r.dst for r in self.routes_}

    def route_get(self, dst: str) -> Route:
        found = self.lookups.get(dst, errno.ENETUNREACH)
        if isinstance(found, int):
            raise NetlinkError(found)
        return found

    def neighbours(self, index: int = 0) -> list[Neighbour]:
        return [n for n in self.neigh if not index or n.index == index]

    def fdb(self, index: int) -> list[FdbEntry]:
        return [e for e in self.fdb_ if e.index == index]

    # --- writes (recorded; those the tests read back also change the state) --------------
    def _record(self, *call: object) -> None:
        self.calls.append(call)

    def add_bridge(self, name: str, mac: str, mtu: int, flags: int) -> None:
        self._record("add_bridge", name)
        self.links_.append(replace(link(len(self.links_) + 1, name, "bridge", mac=mac, mtu=mtu or 1500), flags=flags))

    def add_veth(self, name: str, mac: str, mtu: int, master: int, peer_name: str, peer_mac: str,
                 peer_netns_fd: int) -> None:
        self._record("add_veth", name, peer_name)
        self.links_.append(link(len(self.links_) + 1, name, "veth", master=master, mac=mac))

    def add_vxlan(self, name: str, vni: int, local: str, port: int) -> None:
        self._record("add_vxlan", name, vni, local, port)
        self.links_.append(link(len(self.links_) + 1, name, "vxlan", up=False))

    def set_link(self, index: int, *, flags: int = 0, change: int = 0, mac: str = "", mtu: int = 0,
                 master: int = 0) -> None:
        self._record("set_link", index, flags, change, mac, mtu, master)

    def set_alias(self, index: int, alias: str) -> None:
        self._record("set_alias", index, alias)

    def set_arp_notify(self, index: int) -> None:
        self._record("set_arp_notify", index)

    def set_brport(self, index: int, hairpin: bool, isolated: bool) -> None:
        self._record("set_brport", index, hairpin, isolated)

    def del_link(self, name: str) -> None:
        self._record("del_link", name)
        if self.get_link(name) is None:
            raise NetlinkError(errno.ENODEV)
        self.links_ = [lk for lk in self.links_ if lk.name != name]

    def add_addr(self, index: int, cidr: str, nodad: bool = False) -> None:
        self._record("add_addr", index, cidr)
        self.addrs.append(Addr(index, cidr, 0))

    def del_addr(self, index: int, cidr: str) -> None:
        self._record("del_addr", index, cidr)
        self.addrs = [a for a in self.addrs if (a.index, a.cidr) != (index, cidr)]

    def add_route(self, dst: str, gateway: str | None, oif: int) -> None:
        self._record("add_route", dst, gateway, oif)

    def replace_fdb(self, index: int, mac: str, dst: str) -> None:
        self._record("replace_fdb", mac, dst)
        self.fdb_ = [e for e in self.fdb_ if (e.index, e.mac) != (index, mac)] + [FdbEntry(index, mac, dst)]

    def del_fdb(self, index: int, mac: str, dst: str) -> None:
        self._record("del_fdb", mac, dst)
        self.fdb_ = [e for e in self.fdb_ if (e.index, e.mac, e.dst) != (index, mac, dst)]

    def replace_neigh(self, index: int, ip: str, mac: str) -> None:
        self._record("replace_neigh", ip, mac)
        self.neigh = [n for n in self.neigh if (n.index, n.ip) != (index, ip)] + [
            Neighbour(index, ip, "PERMANENT", mac)]

    def del_neigh(self, index: int, ip: str) -> None:
        self._record("del_neigh", ip)
        self.neigh = [n for n in self.neigh if (n.index, n.ip) != (index, ip)]


TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks the fake against the Protocol
    from netplugins.nl.host import HostNetlink

    _check: HostNetlink = FakeHost()
