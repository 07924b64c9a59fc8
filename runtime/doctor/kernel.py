"""Turn what the netlink boundary reads into doctor's facts (pure; the reads are in ``gather``)."""

from __future__ import annotations

import errno

from netplugins.nl.host import Route as NlRoute
from netplugins.nl.types import RT_SCOPE_LINK, Addr, NetlinkError
from netplugins.nl.types import Link as NlLink

from .facts import Link, Neighbour, Route, RouteLookup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from netplugins.nl.host import HostNetlink
    from netplugins.nl.host import Neighbour as NlNeighbour


def read_kernel(nl: HostNetlink, lookups: tuple[str, ...] = ()) -> tuple[
        tuple[Link, ...], tuple[Route, ...], tuple[Neighbour, ...], tuple[RouteLookup, ...]]:
    """Links, routes, neighbours and the route lookups for ``lookups``, through ``nl``.

    Raises:
        NetlinkError: a dump failed (a failed lookup is a fact, not an error).
    """
    nl_links = nl.links()
    names = {lk.index: lk.name for lk in nl_links}
    found = []
    for dst in lookups:
        got: NlRoute | NetlinkError
        try:
            got = nl.route_get(dst)
        except NetlinkError as exc:
            got = exc
        found.append(to_lookup(dst, got, names))
    return (to_links(nl_links, nl.addresses()), to_routes(nl.routes(), names),
            to_neighbours(nl.neighbours(), names), tuple(found))


def to_links(links: list[NlLink], addrs: list[Addr]) -> tuple[Link, ...]:
    """Links with their addresses (link-scope ones left out, as ``ip addr`` users read
    them), kind, master by name and bridge-port flags."""
    names = {lk.index: lk.name for lk in links}
    by_link: dict[int, list[str]] = {}
    for a in addrs:
        if a.scope != RT_SCOPE_LINK:
            by_link.setdefault(a.index, []).append(a.cidr)
    return tuple(Link(name=lk.name, index=lk.index, up=lk.up, lower_up=lk.lower_up, kind=lk.kind,
                      master=names.get(lk.master) if lk.master else None, isolated=lk.isolated,
                      port_state=lk.port_state, addresses=tuple(by_link.get(lk.index, ())))
                 for lk in links)


def to_routes(routes: list[NlRoute], names: dict[int, str]) -> tuple[Route, ...]:
    """The unicast routes of the main table, with device names."""
    return tuple(Route(dst=r.dst, dev=names.get(r.oif), gateway=r.gateway) for r in routes if r.type == "unicast")


def to_neighbours(neigh: list[NlNeighbour], names: dict[int, str]) -> tuple[Neighbour, ...]:
    """Neighbour entries with device names."""
    return tuple(Neighbour(address=n.ip, dev=names.get(n.index, ""), state=n.state, lladdr=n.lladdr)
                 for n in neigh)


def to_lookup(dst: str, found: NlRoute | NetlinkError, names: dict[int, str]) -> RouteLookup:
    """A route lookup, or why the kernel has none (its words, as ``ip route get`` prints them)."""
    if isinstance(found, NetlinkError):
        return RouteLookup(dst=dst, kind="unreachable", error=found.strerror or errno.errorcode.get(found.code, "error"))
    return RouteLookup(dst=dst, dev=names.get(found.oif), gateway=found.gateway, src=found.prefsrc, kind=found.type,
                       error=None if found.type in ("unicast", "local") else found.type)


def parse_sysctl(text: str) -> bool | None:
    """A 0/1 sysctl value; None when unreadable."""
    text = text.strip()
    return {"0": False, "1": True}.get(text)
