"""Overlay hops: the VXLAN device, the remote peer's FDB and neighbour entries, and the
underlay route to the peer's host.

``gather_overlay`` reads (store, kernel); ``check_overlay`` is pure. Used when SOURCE is on
an overlay network and the target address belongs to a container of another host: the
local hops then stop at the bridge, and these say whether the tunnel can carry the packet
on, naming the missing piece (what the sync process should have programmed from the store).
"""

from __future__ import annotations

import dataclasses
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
    bridge: str
    #: None = the device is missing
    device_up: bool | None = None
    device_master: str = ""
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
    ov = OverlayFacts(net.name, vni, vxlan_name(vni), net.bridge)
    try:
        me = node.read(paths.overlay, require_alive=False)  # type: ignore[attr-defined]
        try:
            node.read(paths.overlay)  # type: ignore[attr-defined]
        except node.NodeFileError as exc:
            ov = dataclasses.replace(ov, syncd_error=str(exc))
        for ep in Store(me.store, light=True).endpoints(net.name):
            if ep.ip == address and ep.node != me.node:
                peer = Peer(ep.ip, ep.mac, ep.node, ep.vtep, ep.names[0] if ep.names else ep.container_id[:12])
                ov = dataclasses.replace(ov, peer=peer)
    except (node.NodeFileError, StoreError) as exc:
        ov = dataclasses.replace(ov, store_error=str(exc))
    try:
        with open_host() as nl:
            return read_device(nl, ov)
    except NetlinkError as exc:
        return dataclasses.replace(ov, route_error=exc.strerror or str(exc))


def read_device(nl: HostNetlink, ov: OverlayFacts) -> OverlayFacts:
    """``ov`` with what the kernel shows, through ``nl``: its device (missing or not), the
    device's FDB and neighbour entries for the peer, and the underlay route to the peer's host.

    Raises:
        NetlinkError: a dump failed (a failed route lookup is a fact).
    """
    links = nl.links()
    names = {lk.index: lk.name for lk in links}
    link = next((lk for lk in links if lk.name == ov.device), None)
    got: dict[str, object] = {}
    p = ov.peer
    if link is not None:
        got.update(device_up=link.up, device_master=names.get(link.master, "") if link.master else "")
        if p is not None:
            got["fdb_dst"] = next((e.dst for e in nl.fdb(link.index) if e.mac.lower() == p.mac.lower() and e.dst), "")
            got["neigh_mac"] = next((n.lladdr or "" for n in nl.neighbours(link.index) if n.ip == p.ip), "")
    if p is not None:
        try:
            got["route_dev"] = names.get(nl.route_get(p.vtep).oif, "")
        except NetlinkError as exc:
            got["route_error"] = exc.strerror or str(exc)
    return dataclasses.replace(ov, **got)  # type: ignore[arg-type]


def check_overlay(w: Walk, ov: OverlayFacts) -> None:
    """The overlay hops, in the order a packet needs them."""
    if ov.device_up is None:
        w.fail("vxlan", f"VXLAN device {ov.device} of {ov.network} is missing", code="vxlan-missing", rank=RANK,
               why=f"the VXLAN device {ov.device} of {ov.network} is missing",
               fix="restart the overlay sync process, or reconnect a container to the network (the overlay "
               "plugin creates it)")
        return
    if not ov.device_up or ov.device_master != ov.bridge:
        what = "down" if not ov.device_up else f"not a port of {ov.bridge} (master {ov.device_master or 'none'})"
        w.fail("vxlan", f"VXLAN device {ov.device} is {what}", code="vxlan-down", rank=RANK,
               why=f"the VXLAN device {ov.device} is {what}", fix=f"ip link set {ov.device} master {ov.bridge} up")
        return
    w.ok("vxlan", f"VXLAN device {ov.device} (VNI {ov.vni}) is up in {ov.bridge}")
    if ov.syncd_error:
        # not a cause by itself: the kernel keeps working without it; but nothing repairs
        # or updates the entries below while it is down
        w.info("sync", f"{ov.syncd_error}: entries are not updated from the store")
    if ov.peer is None:
        if ov.store_error:
            w.info("peer", f"the store could not be asked: {ov.store_error}")
        return
    p = ov.peer
    where = f"{p.name} on {p.node} ({p.vtep})"
    if ov.fdb_dst != p.vtep:
        have = f"it points at {ov.fdb_dst}" if ov.fdb_dst else "there is none"
        sync = "start the sync process" if ov.syncd_error else "the sync process programs it from the store"
        w.fail("tunnel entry", f"no FDB entry sends {p.mac} to {p.vtep}: {have}", code="fdb-missing", rank=RANK,
               why=f"{ov.device} has no forwarding entry for {where}",
               fix=f"{sync}; by hand: bridge fdb replace {p.mac} dev {ov.device} dst {p.vtep} self permanent")
    else:
        w.ok("tunnel entry", f"{p.mac} → {p.vtep} ({where})")
    if ov.neigh_mac.lower() != p.mac.lower():
        w.fail("peer neighbour", f"no neighbour entry {p.ip} → {p.mac} on {ov.device}", code="neigh-missing",
               rank=RANK, why=f"{ov.device} has no neighbour entry for {where}",
               fix=f"ip neigh replace {p.ip} lladdr {p.mac} dev {ov.device} nud permanent")
    else:
        w.ok("peer neighbour", f"{p.ip} → {p.mac} (answered by the VXLAN device's ARP proxy)")
    if not ov.route_dev:
        w.fail("tunnel route", f"no route to {p.node}'s underlay address {p.vtep}: {ov.route_error}",
               code="underlay-route", rank=RANK, why=f"this host has no route to {p.node} ({p.vtep})",
               fix=f"check the underlay: ip route get {p.vtep}")
    else:
        w.ok("tunnel route", f"{p.vtep} via {ov.route_dev}")
