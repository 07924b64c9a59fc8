"""netctl's overlay verbs against the store: create, remove, and the local mirror.

An overlay network is defined once, in etcd. Every netctl command on any host first
mirrors the store's networks into its local state (a Network with driver ``overlay`` and
its conflist, which uses the ``overlay`` plugin), so ``ls``, ``inspect``, ``run`` and
``connect`` work as for local networks; a store that cannot be reached leaves the last
mirror in place (with a warning), so local work goes on.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from typing import Any

from ipam.errors import IpamError
from netplugins.overlay import alloc
from netplugins.overlay.model import OverlayNet
from netplugins.overlay.store import Store, StoreError, StoreUnavailable

from ..errors import Conflict, NetctlError
from ..models import Network, Subnet
from ..networks import attached, load_conflist, now, write_conflist
from ..state import State
from .config import store_url

#: tries of the create transaction before giving up (each loss = another host created a
#: network at the same moment)
CREATE_TRIES = 10


def _store(url: str) -> Store:
    try:
        return Store(url, light=True)  # netctl is short-lived: no 180 ms etcd3gw import per command
    except StoreError as exc:
        raise NetctlError(str(exc)) from None


def require_store(url: str) -> Store:
    """Raises: NetctlError when no store is configured."""
    if not url:
        raise NetctlError("overlay networks need a cluster store: give --store URL or set NETCTL_STORE "
                          "(an etcd v3 endpoint such as http://198.18.60.1:2379)")
    return _store(url)


def create(ctx: Any, url: str, name: str, subnet: str = "", internal: bool = False) -> OverlayNet:
    """Store a new overlay network (VNI and subnet chosen cluster-wide in one transaction)
    and mirror it here. Call with the state lock held.

    Raises:
        NetctlError / Conflict: no store, unreachable store, bad or overlapping subnet,
            duplicate name.
    """
    # lazy: ipam.pools imports netaddr, ~20 ms of netctl start-up
    from ipam.pools import check_overlap, probe_host_prefixes

    store = require_store(url)
    local = ctx.state.find_network(name)
    if local is not None and local.driver != "overlay":
        raise Conflict(f"network with name {name} already exists")
    if subnet:
        try:
            sn = ipaddress.ip_network(subnet, strict=True)
        except ValueError as exc:
            raise NetctlError(f"invalid subnet {subnet}: {exc}") from None
        if sn.version != 4 or sn.prefixlen > 30:
            raise NetctlError(f"invalid subnet {subnet}: overlays take an IPv4 subnet of /30 or larger")
    local_subnets = {n.name: [s.subnet for s in n.subnets] for n in ctx.state.networks()
                     if n.driver != "overlay"}
    host = list(probe_host_prefixes())
    for _try in range(CREATE_TRIES):
        try:
            rev, nets = store.networks()
        except StoreUnavailable as exc:
            raise NetctlError(str(exc)) from None
        if any(n.name == name for n in nets):
            raise Conflict(f"network with name {name} already exists")
        cluster = {n.name: n.subnet for n in nets}
        try:
            if subnet:
                other = alloc.overlapping(subnet, cluster)
                if other:
                    raise NetctlError(f"subnet {subnet} overlaps with overlay network '{other}' "
                                      f"({cluster[other]})")
                check_overlap(subnet, local_subnets, host)
                chosen = subnet
            else:
                in_use = list(cluster.values()) + [s for ss in local_subnets.values() for s in ss]
                in_use += [h.prefix for h in host]
                chosen = alloc.pick_subnet(in_use)
            vni = alloc.next_vni(n.vni for n in nets)
        except (IpamError, alloc.Exhausted) as exc:
            raise NetctlError(str(exc)) from None
        gw = str(ipaddress.ip_network(chosen).network_address + 1)

        net = OverlayNet(name=name, id=secrets.token_hex(32), subnet=chosen, gateway=gw, vni=vni,
                         internal=internal, created=now(), user_subnet=bool(subnet))
        try:
            if store.create_network(net, rev):
                mirror_one(ctx, net)
                return net
        except StoreUnavailable as exc:
            raise NetctlError(str(exc)) from None
    raise NetctlError(f"could not create overlay network {name}: the store kept changing; try again")


def as_local(net: OverlayNet) -> Network:
    """The local record of an overlay network (what ls/inspect/run see)."""
    return Network(id=net.id, name=net.name, driver="overlay", created=net.created, bridge=net.bridge,
                   subnets=[Subnet(subnet=net.subnet, gateway=net.gateway)], internal=net.internal,
                   dns=True, options={"vni": str(net.vni)}, user_subnet=net.user_subnet)


def mirror_one(ctx: Any, net: OverlayNet) -> None:
    rec = as_local(net)
    old = ctx.state.find_network(net.name)
    if old is None or old.to_dict() != rec.to_dict():
        ctx.state.save_network(rec)
        write_conflist(ctx, rec)


def mirror(ctx: Any, url: str) -> None:
    """Bring the local records of overlay networks in line with the store. Call with the
    state lock held. An unreachable store is a warning, not an error.
    """
    try:
        _rev, nets = _store(url).networks()
    except StoreUnavailable as exc:
        print(f"Warning: {exc}; overlay networks shown as last seen", file=sys.stderr)
        return
    names = set()
    for net in nets:
        local = ctx.state.find_network(net.name)
        if local is not None and local.driver != "overlay":
            print(f"Warning: overlay network {net.name} is hidden by a local network of that name",
                  file=sys.stderr)
            continue
        names.add(net.name)
        mirror_one(ctx, net)

    for local in ctx.state.networks():
        if local.driver == "overlay" and local.name not in names and not attached(ctx, local):
            _forget(ctx, local)


def _forget(ctx: Any, net: Network) -> None:
    """Drop the local record of an overlay removed from the store (by another host)."""
    try:
        # the overlay plugin's GC removes the VXLAN device, then the bridge (bridge_gc.py)
        ctx.cni.gc(load_conflist(ctx, net), set())
    except NetctlError:
        pass
    try:
        os.unlink(os.path.join(ctx.paths.conf_dir, f"{net.name}.conflist"))
    except FileNotFoundError:
        pass
    ctx.state.delete_network(net.name)


def remove(ctx: Any, url: str, net: Network) -> None:
    """Remove an overlay from the store, refused while any host has a container on it.
    Call with the state lock held; the caller then removes the local record.

    Raises:
        NetctlError / Conflict.
    """
    store = require_store(url)
    try:
        if not store.delete_network(net.name):
            eps = store.endpoints(net.name)
            where = sorted({f"{e.names[0] if e.names else e.container_id[:12]}@{e.node}" for e in eps})
            raise Conflict(f"error while removing network: network {net.name} id {net.id} has active "
                           f"endpoints ({', '.join(where)})")
    except StoreUnavailable as exc:
        raise NetctlError(str(exc)) from None


def members(url: str, net: Network) -> dict[str, Any] | None:
    """inspect's Containers of an overlay: every host's, with its node (None: no store)."""
    try:
        eps = _store(url).endpoints(net.name)
    except (StoreUnavailable, NetctlError):
        return None
    prefix = ipaddress.ip_network(net.subnets[0].subnet).prefixlen if net.subnets else 32
    return {e.container_id: {"Name": e.names[0] if e.names else e.container_id[:12], "MacAddress": e.mac,
                             "IPv4Address": f"{e.ip}/{prefix}", "IPv6Address": "", "Node": e.node}
            for e in sorted(eps, key=lambda e: (e.node, e.ip))}


def ensure_mirrored(ctx: Any) -> None:
    """For netctl commands: mirror the store's networks first when a store is configured."""
    url = store_url()
    if url:
        with ctx.state.locked():
            mirror(ctx, url)


__all__ = ["State", "ensure_mirrored", "as_local", "create", "members", "mirror", "remove", "require_store"]
