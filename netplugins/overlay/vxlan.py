"""The VXLAN data plane of one overlay on one host.

Per network: a VXLAN device (``ovvx<VNI>``, UDP 4789, ``nolearning``, ``proxy``: it answers
ARP for addresses in its neighbour table) enslaved to the overlay's bridge (``ovbr<VNI>``),
which the containers' veths join. For every container on another host: a permanent FDB
entry (its MAC → that host's underlay address) and a permanent neighbour entry (its IP →
its MAC) on the VXLAN device. No all-zero FDB entry, so broadcasts and unknown MACs are
never flooded to other hosts: what is not in the store is not reachable.

``plan_peers``/``diff`` are pure; ``Vxlan`` applies them through the netlink boundary
(``netplugins.nl.host.PluginNetlink``, the plugins' implementation: the overlay plugin runs
this on every ADD, where pyroute2's import would cost 155-275 ms): one request per changed
entry, no process.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

from ..cni.errors import CniError
from ..nl.bridge import Rtnl, delete_link, iface_index  # the plugins' implementation, chosen there
from ..nl.types import IFF_UP, NetlinkError
from .model import VXLAN_PORT, EndpointRec

log = logging.getLogger(__name__)


class DataplaneError(Exception):
    """The kernel refused a change or a read (message names what and the errno's text)."""


@dataclass(frozen=True, order=True)
class Peer:
    """A remote container as the VXLAN device must know it."""

    ip: str
    mac: str
    vtep: str


@dataclass(frozen=True)
class Changes:
    fdb_add: tuple[Peer, ...] = ()
    fdb_del: tuple[tuple[str, str], ...] = ()      # (mac, dst)
    neigh_add: tuple[Peer, ...] = ()
    neigh_del: tuple[str, ...] = ()                # ip

    def __bool__(self) -> bool:
        return bool(self.fdb_add or self.fdb_del or self.neigh_add or self.neigh_del)


def plan_peers(endpoints: Iterable[EndpointRec], network: str, node: str,
               live_nodes: dict[str, str] | None = None) -> list[Peer]:
    """The peers of ``network`` that live on other nodes. With ``live_nodes`` (name →
    underlay address), an endpoint whose node is not live is left out and the node's
    current address wins over the one recorded at ADD time."""
    out = []
    for ep in endpoints:
        if ep.network != network or ep.node == node:
            continue
        vtep = ep.vtep
        if live_nodes is not None:
            if ep.node not in live_nodes:
                continue
            vtep = live_nodes[ep.node]
        out.append(Peer(ip=ep.ip, mac=ep.mac.lower(), vtep=vtep))
    return sorted(out)


def diff(desired: Iterable[Peer], fdb: Iterable[tuple[str, str]], neigh: Iterable[tuple[str, str]]) -> Changes:
    """What to change so that the device holds exactly ``desired``.

    ``fdb`` is the device's current (mac, dst) remote entries, ``neigh`` its (ip, mac)
    permanent neighbours.
    """
    want = list(desired)
    want_fdb = {(p.mac, p.vtep) for p in want}
    want_neigh = {(p.ip, p.mac) for p in want}
    have_fdb = {(m.lower(), d) for m, d in fdb}
    have_neigh = {(i, m.lower()) for i, m in neigh}
    want_ips = {p.ip for p in want}
    return Changes(
        fdb_add=tuple(p for p in want if (p.mac, p.vtep) not in have_fdb),
        fdb_del=tuple(sorted(have_fdb - want_fdb)),
        neigh_add=tuple(p for p in want if (p.ip, p.mac) not in have_neigh),
        neigh_del=tuple(sorted(i for i, _m in have_neigh - want_neigh if i not in want_ips)),
    )


# --- driver ---------------------------------------------------------------------------

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..nl.host import PluginNetlink


def link_exists(name: str) -> bool:
    """Whether interface ``name`` exists in this namespace (an ioctl, no netlink socket)."""
    return iface_index(name) is not None


def vxlan_devices() -> list[str]:
    """Names of the VXLAN devices in this namespace (not /sys: sysfs shows the namespace
    it was mounted in, which need not be ours). Raises: DataplaneError."""
    from ..nl.pyroute import open_host  # pyroute2: ~170 ms to import

    try:
        with open_host() as nl:
            return [lk.name for lk in nl.links() if lk.kind == "vxlan"]
    except NetlinkError as exc:
        raise DataplaneError(f"cannot list the VXLAN devices: {exc.strerror}") from None


class Vxlan:
    """The VXLAN device ``name`` in the namespace we run in."""

    def __init__(self, name: str, vni: int) -> None:
        self.name = name
        self.vni = vni

    def ensure(self, local: str, mtu: int, bridge: str) -> None:
        """Create (or fix) the device: VNI, local address, port 4789, no learning, ARP
        proxy, MTU, enslaved to ``bridge`` and up. Idempotent; a concurrent ADD creating
        it at the same time is fine.

        Raises: DataplaneError.
        """
        if self._ready(mtu, bridge):
            return  # the common case: two requests, nothing to change
        step = f"create VXLAN device {self.name}"
        try:
            with Rtnl() as nl:
                try:
                    nl.add_vxlan(self.name, self.vni, local, VXLAN_PORT)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:  # EEXIST: a concurrent ADD made it
                        raise
                step = f"set {self.name} up in {bridge}"
                link, br = nl.get_link(self.name), nl.get_link(bridge)
                if link is None or br is None:
                    raise NetlinkError(errno.ENODEV)
                nl.set_link(link.index, flags=IFF_UP, change=IFF_UP, mtu=mtu, master=br.index)
        except NetlinkError as exc:
            raise DataplaneError(f"cannot {step}: {exc.strerror}") from None

    def _ready(self, mtu: int, bridge: str) -> bool:
        """Whether the device exists, is up, has ``mtu`` and is a port of ``bridge``."""
        try:
            with Rtnl() as nl:
                link, br = nl.get_link(self.name), nl.get_link(bridge)
        except (NetlinkError, OSError):
            return False
        return (link is not None and br is not None and link.kind == "vxlan" and link.mtu == mtu
                and link.master == br.index and link.up)

    def delete(self) -> None:
        """Remove the device; absent is fine, and so is a failure (logged): callers are
        teardowns that carry on, and the sync process removes stale devices again."""
        try:
            with Rtnl() as nl:
                delete_link(nl, self.name)
        except (CniError, OSError) as exc:
            log.warning("cannot delete %s: %s", self.name, exc)

    def current(self, nl: PluginNetlink) -> tuple[int, list[tuple[str, str]], list[tuple[str, str]]]:
        """(index, fdb (mac, dst), permanent neigh (ip, mac)) as the kernel has them.

        Raises: DataplaneError (the device is missing), NetlinkError.
        """
        link = nl.get_link(self.name)
        if link is None:
            raise DataplaneError(f"VXLAN device {self.name} is missing")
        fdb = [(e.mac, e.dst) for e in nl.fdb(link.index) if e.dst]
        neigh = [(n.ip, n.lladdr) for n in nl.neighbours(link.index) if n.lladdr and n.state == "PERMANENT"]
        return link.index, fdb, neigh

    def sync(self, peers: Iterable[Peer], nl: PluginNetlink | None = None) -> Changes:
        """Make the device's entries exactly ``peers``; what changed. Deletions first: a MAC
        that moved host is replaced. Raises: DataplaneError."""
        peers = list(peers)
        try:
            # a socket given by the caller stays open for it
            with nullcontext(nl) if nl is not None else Rtnl() as h:
                index, fdb, neigh = self.current(h)
                ch = diff(peers, fdb, neigh)
                for mac, dst in ch.fdb_del:
                    h.del_fdb(index, mac, dst)
                for p in ch.fdb_add:
                    h.replace_fdb(index, p.mac, p.vtep)
                for ip in ch.neigh_del:
                    h.del_neigh(index, ip)
                for p in ch.neigh_add:
                    h.replace_neigh(index, p.ip, p.mac)
        except NetlinkError as exc:
            raise DataplaneError(f"cannot update the entries of {self.name}: {exc.strerror}") from None
        return ch


def underlay_mtu(address: str) -> int:
    """MTU of the interface that holds ``address``. Raises: DataplaneError."""
    from ..nl.pyroute import open_host  # pyroute2: ~170 ms to import

    try:
        with open_host() as nl:
            index = next((a.index for a in nl.addresses() if a.cidr.split("/")[0] == address), 0)
            link = next((lk for lk in nl.links() if lk.index == index), None) if index else None
    except NetlinkError as exc:
        raise DataplaneError(f"cannot read the interfaces: {exc.strerror}") from None
    if link is None:
        raise DataplaneError(f"no interface holds the advertise address {address}")
    return link.mtu


def default_source() -> str:
    """The source address of the default route (NETCTL_ADVERTISE's default).
    Raises: DataplaneError."""
    from ..nl.pyroute import open_host  # pyroute2: ~170 ms to import

    try:
        with open_host() as nl:
            src = nl.route_get("1.1.1.1").prefsrc
    except NetlinkError:
        src = None
    if src:
        return src
    raise DataplaneError("no default route to take the advertise address from: set NETCTL_ADVERTISE")
