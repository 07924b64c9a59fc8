"""Read one namespace through the netlink boundary into an ``NsView`` (the reads are the
boundary's; what is kept and how a failed route lookup reads is decided here)."""

from __future__ import annotations

import errno

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
        try:
            r = nl.route_get(dst)
        except NetlinkError as exc:  # the kernel's words, as ``ip route get`` prints them
            found.append(RouteLookup(dst, kind="unreachable", error=exc.strerror or errno.errorcode.get(exc.code)))
            continue
        found.append(RouteLookup(dst, names.get(r.oif), r.gateway, r.prefsrc, r.type,
                                 None if r.type in ("unicast", "local") else r.type))
    return NsView(links, tuple(nl.addresses()), tuple(r for r in nl.routes() if r.type == "unicast"),
                  tuple(nl.neighbours()), tuple(found))
