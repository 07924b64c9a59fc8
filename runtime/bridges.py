"""Remove only what netctl made: a network's bridge goes only if netctl created it.

The bridge plugin marks a bridge it creates with the alias ``netctl net=<network>``
(IFLA_IFALIAS, shown by ``ip link``). ``netctl rm`` / ``prune`` delete a bridge that
carries its network's mark; a bridge without it was the host's before the network was
created (``-o com.docker.network.bridge.name=br0``: adopted), so only netctl's gateway
addresses come off it (its firewall rules go with the plugins' GC) and the bridge and its
other links stay. ``netctl gc`` deletes marked bridges without ports whose network no longer exists.
The decisions are pure (``plan_removal``); the kernel work is the few functions below it.
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass

from netplugins.nl.bridge import BRIDGE_MARK_PREFIX, bridge_mark

from .errors import NetctlError
from .models import Network


@dataclass(frozen=True)
class Removal:
    """What ``netctl rm`` does to a network's bridge."""

    #: delete the bridge (netctl created it)
    delete: bool
    #: else: the gateway addresses (CIDR) netctl put on the adopted bridge, to remove
    addresses: tuple[str, ...] = ()


def gateway_cidrs(net: Network) -> list[str]:
    """The addresses the bridge plugin puts on the bridge: each subnet's gateway."""
    out = []
    for s in net.subnets:
        if s.gateway:
            out.append(f"{s.gateway}/{ipaddress.ip_network(s.subnet).prefixlen}")
    return out


def plan_removal(net: Network, alias: str, present: list[str]) -> Removal:
    """Delete the bridge if it carries ``net``'s mark; else remove only those of netctl's
    gateway addresses that are on it (``present``: its addresses, CIDR)."""
    if alias == bridge_mark(net.name):
        return Removal(delete=True)
    have = {ipaddress.ip_interface(a) for a in present}
    return Removal(delete=False, addresses=tuple(
        c for c in gateway_cidrs(net) if ipaddress.ip_interface(c) in have))


def orphans(links: list[tuple[str, str, bool]], networks: set[str]) -> list[str]:
    """Names of bridges (``(name, alias, has ports)``) marked for a network that no longer
    exists and without ports. A bridge with ports is left alone: the plugin may serve
    another CNI runtime's network of that name, whose containers use it."""
    return [name for name, alias, busy in links
            if alias.startswith(BRIDGE_MARK_PREFIX) and not busy
            and alias[len(BRIDGE_MARK_PREFIX):] not in networks]


# --- kernel (the current network namespace, through pyroute2) -----------------------------

def remove_bridge(net: Network) -> str:
    """Apply :func:`plan_removal` to ``net``'s bridge; a note for the user when the bridge
    was kept ("" when it was deleted or did not exist).

    Raises:
        NetctlError: netlink refused.
    """
    from netplugins.cni.errors import CniError
    from netplugins.nl.bridge import delete_link
    from netplugins.nl.pyroute import open_host
    from netplugins.nl.types import NetlinkError

    with open_host() as nl:
        try:
            link = nl.get_link(net.bridge)
            if link is None:
                return ""
            present = [a.cidr for a in nl.addresses(link.index)]
        except NetlinkError as exc:
            raise NetctlError(f"cannot read bridge {net.bridge}: {exc.strerror}") from None
        plan = plan_removal(net, link.alias, present)
        if plan.delete:
            try:
                delete_link(nl, net.bridge)
            except CniError as exc:
                raise NetctlError(f"cannot delete bridge {net.bridge}: {exc.msg}") from None
            return ""
        for cidr in plan.addresses:
            try:
                nl.del_addr(link.index, cidr)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:
                    raise NetctlError(f"cannot remove {cidr} from bridge {net.bridge}: {exc.strerror}") from None
    removed = ", ".join(plan.addresses) or "no addresses"
    return (f"kept bridge {net.bridge}: netctl did not create it (it has no '{bridge_mark(net.name)}' "
            f"alias); removed only netctl's addresses ({removed}) and firewall rules, its other "
            "links stay")


def bridge_exists(name: str) -> bool:
    """Whether an interface called ``name`` exists in the current namespace."""
    import socket

    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def remove_orphans(networks: set[str]) -> list[str]:
    """Delete marked bridges whose network is gone (``netctl gc``); one line per bridge.

    Raises:
        NetctlError: netlink refused.
    """
    from netplugins.cni.errors import CniError
    from netplugins.nl.bridge import delete_link
    from netplugins.nl.pyroute import open_host
    from netplugins.nl.types import NetlinkError

    report = []
    with open_host() as nl:
        try:
            found = nl.links()
        except NetlinkError as exc:
            raise NetctlError(f"cannot list the links: {exc.strerror}") from None
        masters = {lk.master for lk in found}
        links = [(lk.name, lk.alias, lk.index in masters) for lk in found]
        for name in orphans(links, networks):
            try:
                delete_link(nl, name)
            except CniError as exc:
                raise NetctlError(f"cannot delete bridge {name}: {exc.msg}") from None
            report.append(f"removed bridge {name} of a network that no longer exists")
    return report
