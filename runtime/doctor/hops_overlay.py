"""Overlay hops: the VXLAN device, the remote peer's FDB and neighbour entries, and the
underlay route to the peer's host (pure, on ``netplugins.overlay.inspect``'s reading, which
``gather.gather_overlay`` asks for).

Used when SOURCE is on an overlay network and the target address belongs to a container of
another host: the local hops then stop at the bridge, and these say whether the tunnel can
carry the packet on, naming the missing piece (what the sync process should have programmed
from the store).
"""

from __future__ import annotations

from .walk import Walk

TYPE_CHECKING = False
if TYPE_CHECKING:  # the store client behind it is imported only for overlay paths
    from netplugins.overlay.inspect import OverlayFacts

#: rank of overlay causes: after a down interface (2), before firewall drops
RANK = 3


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
