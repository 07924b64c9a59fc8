"""Read one namespace through the netlink boundary into an ``NsView`` (the reads are the
boundary's; what is kept and how a failed route lookup reads is decided here)."""

from __future__ import annotations

import errno

from netplugins.nl.host import Route
from netplugins.nl.types import NetlinkError

from .facts import NsView, RouteLookup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from netplugins.nl.host import HostNetlink


def read_kernel(nl: HostNetlink, lookups: tuple[str, ...] = ()) -> NsView:
    """Links, addresses, unicast routes, neighbours and the route lookups for ``lookups``.

    Raises:
        NetlinkError: a dump failed (a failed lookup is a fact, not an error).
    """
    links = tuple(nl.links())
    names = {lk.index: lk.name for lk in links}
    found = []
    for dst in lookups:
        got: Route | NetlinkError
        try:
            got = nl.route_get(dst)
        except NetlinkError as exc:
            got = exc
        found.append(to_lookup(dst, got, names))
    return NsView(links, tuple(nl.addresses()), tuple(r for r in nl.routes() if r.type == "unicast"),
                  tuple(nl.neighbours()), tuple(found))


def to_lookup(dst: str, found: Route | NetlinkError, names: dict[int, str]) -> RouteLookup:
    """A route lookup, or why the kernel has none (its words, as ``ip route get`` prints them)."""
    if isinstance(found, NetlinkError):
        return RouteLookup(dst=dst, kind="unreachable", error=found.strerror or errno.errorcode.get(found.code, "error"))
    return RouteLookup(dst=dst, dev=names.get(found.oif), gateway=found.gateway, src=found.prefsrc, kind=found.type,
                       error=None if found.type in ("unicast", "local") else found.type)

