"""Overlay hops: the VXLAN device, the remote peer's FDB and neighbour entries, and the
underlay route to the peer's host.

``gather_overlay`` reads (store, kernel); ``check_overlay`` is pure. Used when SOURCE is on
an overlay network and the target address belongs to a container of another host: the
local hops then stop at the bridge, and these say whether the tunnel can carry the packet
on, naming the missing piece (what the sync process should have programmed from the store).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netplugins.nl.types import NetlinkError
from netplugins.overlay.model import vxlan_name

from .facts import ContainerInfo, NetworkInfo
from .walk import Walk

TYPE_CHECKING = False
if TYPE_CHECKING:
    from netplugins.nl.host import HostNetlink

#: rank of overlay causes: after a down interface (2), before firewall drops
RANK = 3


@dataclass(frozen=True)
class Peer:
    """The remote container, as the store knows it."""
    ip: str
    mac: str
    node: str
    vtep: str
    name: str


@dataclass(frozen=True)
class OverlayFacts:
    network: str
    vni: int
    device: str
    #: None = the device is missing
    device_up: bool | None = None
    device_master: str = ""
    bridge: str = ""
    #: the store's record of the target (None: no container of another host holds it)
    peer: Peer | None = None
    #: what the device's FDB says for the peer's MAC ("" = no entry)
    fdb_dst: str = ""
    #: what the device's neighbour table says for the peer's address ("" = none)
    neigh_mac: str = ""
    #: the underlay route to the peer's host: device, or the kernel's error
    route_dev: str = ""
    route_error: str = ""
    #: why the store could not be asked ("" = it answered)
    store_error: str = ""
    #: why the sync process is not running ("" = it is)
    syncd_error: str = ""


def _overlay_of(src: ContainerInfo, networks: tuple[NetworkInfo, ...], address: str) -> NetworkInfo | None:
    addr = ipaddress.ip_address(address)
    for att in src.attachments:
        net = next((n for n in networks if n.name == att.network), None)
        if net is not None and net.driver == "overlay" and any(
                addr in ipaddress.ip_network(s) for s in net.subnets):
            return net
    return None


def gather_overlay(paths: object, src: ContainerInfo, networks: tuple[NetworkInfo, ...],
                   address: str | None) -> OverlayFacts | None:
    """Read the overlay facts for a path from ``src`` to ``address`` (None: not an overlay path)."""
    if not address:
        return None
    try:
        net = _overlay_of(src, networks, address)
    except ValueError:
        return None
    if net is None:
        return None
    # lazy: only overlay networks need it (cluster store client, pyroute2)
    from netplugins.nl.pyroute import open_host  # pyroute2: ~170 ms, paid only by a doctor run
    from netplugins.overlay import node
    from netplugins.overlay.store import Store, StoreError

    vni = int(net.bridge[4:]) if net.bridge.startswith("ovbr") and net.bridge[4:].isdigit() else 0
    dev = vxlan_name(vni)
    peer, store_error, syncd = None, "", ""
    try:
        me = node.read(paths.overlay, require_alive=False)  # type: ignore[attr-defined]
        try:
            node.read(paths.overlay)  # type: ignore[attr-defined]
        except node.NodeFileError as exc:
            syncd = str(exc)
        for ep in Store(me.store, light=True).endpoints(net.name):
            if ep.ip == address and ep.node != me.node:
                peer = Peer(ep.ip, ep.mac, ep.node, ep.vtep, ep.names[0] if ep.names else ep.container_id[:12])
    except (node.NodeFileError, StoreError) as exc:
        store_error = str(exc)
    try:
        with open_host() as nl:
            dev_facts = read_device(nl, dev, peer)
    except NetlinkError as exc:
        dev_facts = DeviceFacts(route_error=exc.strerror or str(exc))
    return OverlayFacts(net.name, vni, dev, dev_facts.up, dev_facts.master, net.bridge, peer, dev_facts.fdb_dst,
                        dev_facts.neigh_mac, dev_facts.route_dev, dev_facts.route_error, store_error, syncd)


@dataclass(frozen=True)
class DeviceFacts:
    """What the kernel shows of the VXLAN device and the route to the peer's host."""
    up: bool | None = None
    master: str = ""
    fdb_dst: str = ""
    neigh_mac: str = ""
    route_dev: str = ""
    route_error: str = ""


def read_device(nl: HostNetlink, dev: str, peer: Peer | None) -> DeviceFacts:
    """The device ``dev`` (None: missing), its FDB and neighbour entries for ``peer``, and
    the underlay route to the peer's host, through ``nl``.

    Raises:
        NetlinkError: a dump failed (a failed route lookup is a fact).
    """
    links = nl.links()
    names = {lk.index: lk.name for lk in links}
    link = next((lk for lk in links if lk.name == dev), None)
    up, master, fdb_dst, neigh_mac, route_dev, route_error = None, "", "", "", "", ""
    if link is not None:
        up, master = link.up, names.get(link.master, "") if link.master else ""
        if peer is not None:
            fdb_dst = next((e.dst or "" for e in nl.fdb(link.index) if e.mac.lower() == peer.mac.lower() and e.dst), "")
            neigh_mac = next((n.lladdr or "" for n in nl.neighbours(link.index) if n.ip == peer.ip), "")
    if peer is not None:
        try:
            route_dev = names.get(nl.route_get(peer.vtep).oif, "")
        except NetlinkError as exc:
            route_error = exc.strerror or str(exc)
    return DeviceFacts(up, master, fdb_dst, neigh_mac, route_dev, route_error)


def check_overlay(w: Walk, ov: OverlayFacts) -> None:
    """The overlay hops, in the order a packet needs them."""
    f, hop = w.found, "vxlan"
    if ov.device_up is None:
        f.fail(hop, f"VXLAN device {ov.device} of {ov.network} is missing",
               cause=f.cause("vxlan-missing", RANK, f"the VXLAN device {ov.device} of {ov.network} is missing",
                             "restart the overlay sync process, or reconnect a container to the network "
                             "(the overlay plugin creates it)", hop))
        return
    if not ov.device_up or ov.device_master != ov.bridge:
        what = "down" if not ov.device_up else f"not a port of {ov.bridge} (master {ov.device_master or 'none'})"
        f.fail(hop, f"VXLAN device {ov.device} is {what}",
               cause=f.cause("vxlan-down", RANK, f"the VXLAN device {ov.device} is {what}",
                             f"ip link set {ov.device} master {ov.bridge} up", hop))
        return
    f.ok(hop, f"VXLAN device {ov.device} (VNI {ov.vni}) is up in {ov.bridge}")
    if ov.syncd_error:
        # not a cause by itself: the kernel keeps working without it; but nothing repairs
        # or updates the entries below while it is down
        f.info("sync", f"{ov.syncd_error}: entries are not updated from the store")
    if ov.peer is None:
        if ov.store_error:
            f.info("peer", f"the store could not be asked: {ov.store_error}")
        return
    p = ov.peer
    where = f"{p.name} on {p.node} ({p.vtep})"
    if ov.fdb_dst != p.vtep:
        have = f"it points at {ov.fdb_dst}" if ov.fdb_dst else "there is none"
        f.fail("tunnel entry", f"no FDB entry sends {p.mac} to {p.vtep}: {have}",
               cause=f.cause("fdb-missing", RANK, f"{ov.device} has no forwarding entry for {where}",
                             f"{'start the sync process' if ov.syncd_error else 'the sync process programs it from the store'}"
                             f"; by hand: bridge fdb replace "
                             f"{p.mac} dev {ov.device} dst {p.vtep} self permanent", "tunnel entry"))
    else:
        f.ok("tunnel entry", f"{p.mac} → {p.vtep} ({where})")
    if ov.neigh_mac.lower() != p.mac.lower():
        f.fail("peer neighbour", f"no neighbour entry {p.ip} → {p.mac} on {ov.device}",
               cause=f.cause("neigh-missing", RANK, f"{ov.device} has no neighbour entry for {where}",
                             f"ip neigh replace {p.ip} lladdr {p.mac} dev {ov.device} nud permanent",
                             "peer neighbour"))
    else:
        f.ok("peer neighbour", f"{p.ip} → {p.mac} (answered by the VXLAN device's ARP proxy)")
    if not ov.route_dev:
        f.fail("tunnel route", f"no route to {p.node}'s underlay address {p.vtep}: {ov.route_error}",
               cause=f.cause("underlay-route", RANK, f"this host has no route to {p.node} ({p.vtep})",
                             f"check the underlay: ip route get {p.vtep}", "tunnel route"))
    else:
        f.ok("tunnel route", f"{p.vtep} via {ov.route_dev}")
