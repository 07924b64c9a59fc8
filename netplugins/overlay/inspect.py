"""What the overlay set up for one remote container, as the store and the kernel show it
(read only; ``netctl doctor``'s overlay hops judge it).

The store says which host holds the address and where that host's VTEP is; the node file
says whether the sync process runs; the VXLAN device's FDB and permanent neighbour
entries are read as the sync process itself reads them (``vxlan.Vxlan.current``), so
doctor and the sync process cannot disagree about what is programmed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..nl.types import NetlinkError
from . import node
from .model import vxlan_name
from .store import Store, StoreError
from .vxlan import DataplaneError, Vxlan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..nl.host import HostNetlink


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
    """The path to one remote container over an overlay network's VXLAN device."""

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


def inspect(overlay_dir: str, network: str, bridge: str, address: str, nl: HostNetlink) -> OverlayFacts:
    """The overlay's state for the path to ``address`` on ``network`` (bridge ``bridge``):
    the store's record, the sync process, and the kernel through ``nl``.

    The kernel's refusal to be read is a fact too (``route_error``); never raises.
    """
    vni = int(bridge[4:]) if bridge.startswith("ovbr") and bridge[4:].isdigit() else 0
    ov = OverlayFacts(network, vni, vxlan_name(vni), bridge)
    try:
        me = node.read(overlay_dir, require_alive=False)
        try:
            node.read(overlay_dir)
        except node.NodeFileError as exc:
            ov = dataclasses.replace(ov, syncd_error=str(exc))
        for ep in Store(me.store, light=True).endpoints(network):
            if ep.ip == address and ep.node != me.node:
                peer = Peer(ep.ip, ep.mac, ep.node, ep.vtep, ep.names[0] if ep.names else ep.container_id[:12])
                ov = dataclasses.replace(ov, peer=peer)
    except (node.NodeFileError, StoreError) as exc:
        ov = dataclasses.replace(ov, store_error=str(exc))
    try:
        return read_device(nl, ov)
    except NetlinkError as exc:
        return dataclasses.replace(ov, route_error=exc.strerror or str(exc))


def read_device(nl: HostNetlink, ov: OverlayFacts) -> OverlayFacts:
    """``ov`` with what the kernel shows, through ``nl``: its device (missing or not), the
    device's entries for the peer, and the underlay route to the peer's host.

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
            try:
                _index, fdb, neigh = Vxlan(ov.device, ov.vni).current(nl)
            except DataplaneError:
                fdb, neigh = [], []  # gone since the dump above
            got["fdb_dst"] = next((d for m, d in fdb if m.lower() == p.mac.lower()), "")
            got["neigh_mac"] = next((m for i, m in neigh if i == p.ip), "")
    if p is not None:
        try:
            got["route_dev"] = names.get(nl.route_get(p.vtep).oif, "")
        except NetlinkError as exc:
            got["route_error"] = exc.strerror or str(exc)
    return dataclasses.replace(ov, **got)  # type: ignore[arg-type]
