"""The ``overlay`` plugin: a container on a cluster-wide network (VXLAN + etcd).

Config (what netctl writes; another runtime needs only ``name`` and ``type``)::

    {"cniVersion": "1.0.0", "name": "ov1", "type": "overlay",
     "overlayDir": "/run/netctl/overlay", "stateDir": "/run/netctl/bridge"}

(netctl chains ``netctl-dns`` after it for this host's dnsd.)

The network itself (subnet, gateway, VNI, internal) is read from the store named in the
node file that this host's sync process writes (``overlayDir/node.json``). ADD is the
bridge plugin's ADD on the overlay's bridge, with the address leased in etcd instead of
by a delegated IPAM plugin: one transaction "create ``endpoints/<net>/<ip>`` if absent",
under the node's etcd lease, holding everything the other hosts need (MAC, tunnel end
point, names). Before the lease, the VXLAN device is made and afterwards the entries of
the peers already known are programmed; the sync processes of the other hosts program
this container from their watch.

Errors: 11 (try again later) when the store cannot be reached (the message names it) or
the sync process is not running; 7 for a network the store does not know; 110 when the
subnet is full; otherwise the bridge plugin's codes.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, replace
from typing import Any

from ..cni import errors
from ..cni.errors import CniError, ErrorList
from ..cni.netconf import load_netconf
from ..cni.rollback import Rollback
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import IPConfig, Result, Route
from ..meta.dnsreg_plan import dns_names

# all stdlib-only: imported here so that the plugin daemon has them loaded before it
# forks a worker (etcd3gw is never imported on this path, see overlay/lighthttp.py)
from ..overlay import alloc, node, records
from ..overlay.model import EndpointRec, mac_for, vxlan_name
from ..overlay.store import LeaseGone, Store, StoreError, StoreUnavailable
from ..overlay.vxlan import DataplaneError, Vxlan, link_exists, plan_peers
from . import bridge as bridge_plugin
from .bridge import KNOWN_ARGS
from .bridge_conf import parse_bridge_conf

DEFAULT_OVERLAY_DIR = "/run/netctl/overlay"
#: a lost transaction (another host took the address) moves on to the next address;
#: after this many the endpoints are re-read
MAX_TRIES = 32


@dataclass(frozen=True)
class OverlayConf:
    name: str
    overlay_dir: str
    raw: dict[str, Any]


def parse_conf(stdin: bytes) -> OverlayConf:
    """Raises: CniError 6/7."""
    net = load_netconf(stdin)
    d = net.raw.get("overlayDir", DEFAULT_OVERLAY_DIR) or DEFAULT_OVERLAY_DIR
    if not isinstance(d, str) or not d.startswith("/"):
        raise errors.config_error("invalid config: overlayDir must be an absolute path")
    if net.raw.get("ipam"):
        raise errors.config_error("invalid config: an overlay network takes no ipam section "
                                  "(addresses are leased cluster-wide in the store)")
    return OverlayConf(name=net.name, overlay_dir=d, raw=net.raw)


def bridge_stdin(conf: OverlayConf, bridge: str, internal: bool, mtu: int) -> bytes:
    """The bridge plugin's config for this overlay on this host (no IPAM: ours)."""
    raw = dict(conf.raw)
    raw.pop("overlayDir", None)
    raw.update({"type": "bridge", "bridge": bridge, "isGateway": True, "isDefaultGateway": not internal,
                "ipMasq": not internal, "internal": internal, "isolate": True, "hairpinMode": True})
    if mtu:
        raw["mtu"] = mtu
    return json.dumps(raw).encode()


def _unavailable(exc: Exception) -> CniError:
    return CniError(errors.TRY_AGAIN_LATER, str(exc))


def _node(conf: OverlayConf) -> Any:

    try:
        return node.read(conf.overlay_dir)
    except node.NodeFileError as exc:
        raise CniError(errors.TRY_AGAIN_LATER, str(exc)) from None


def _requested_ip(raw: dict[str, Any], cni_args: dict[str, str]) -> str:
    """runtimeConfig.ips (the ``ips`` capability) or CNI_ARGS IP=, without a prefix."""
    ips = (raw.get("runtimeConfig") or {}).get("ips") or []
    if not ips and cni_args.get("IP"):
        ips = [cni_args["IP"]]
    for ip in ips:
        if isinstance(ip, str) and ":" not in ip:
            return ip.split("/")[0]
    return ""


# --- ADD ----------------------------------------------------------------------------------

def cmd_add(args: CmdArgs) -> Result:
    """Attach the container to the overlay (see the module docstring).

    Raises:
        CniError: 11 store or sync process unavailable, 7 unknown network or bad config,
            110 subnet full, 105 requested address taken, bridge plugin codes.
    """

    conf = parse_conf(args.stdin)
    me = _node(conf)
    try:
        store = Store(me.store, light=True)
        found = store.network(conf.name)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    except StoreError as exc:
        raise errors.config_error(str(exc)) from None
    if found is None:
        raise errors.config_error(f"overlay network {conf.name!r} does not exist in the store {me.store}")
    net, create_rev = found
    bstdin = bridge_stdin(conf, net.bridge, net.internal, me.mtu)
    bconf = parse_bridge_conf(bstdin, args.args)
    # the names go into the cluster store, for the other hosts' dnsd (runtime/overlay/dnsfeed.py);
    # this host's dnsd gets them from the netctl-dns plugin chained after this one
    names = dns_names(bconf.net, args.container_id, args.args)
    prefix = ipaddress.ip_network(net.subnet).prefixlen
    wanted = _requested_ip(conf.raw, args.args)
    if wanted and ipaddress.ip_address(wanted) not in ipaddress.ip_network(net.subnet):
        raise errors.config_error(f"requested address {wanted} is not in {net.name}'s subnet {net.subnet}")

    def lease(stack: Rollback) -> tuple[Result, str]:

        vx = Vxlan(net.vxlan, net.vni)
        try:
            vx.ensure(me.advertise, me.mtu, net.bridge)
            ep, known = _claim(store, net, create_rev, me, args, names, wanted)
        except DataplaneError as exc:
            raise CniError(errors.NETLINK_FAILURE, str(exc)) from None
        except LeaseGone as exc:
            raise CniError(errors.TRY_AGAIN_LATER, f"{exc}: the sync process is renewing it") from None
        except StoreUnavailable as exc:
            raise _unavailable(exc) from None
        except alloc.Exhausted as exc:
            raise CniError(errors.RANGE_EXHAUSTED, str(exc)) from None
        stack.undo("release the cluster lease of the address", store.release, ep)
        try:
            records.put(conf.overlay_dir, records.Local(ep, net.bridge, net.vni))
        except OSError as exc:
            raise CniError(errors.IO_FAILURE, f"cannot record the endpoint in {conf.overlay_dir}", str(exc)) from None
        stack.undo("remove the endpoint record", records.remove, conf.overlay_dir, net.name,
                   args.container_id, args.ifname)
        try:
            # the peers known when the address was chosen (no second read: one round trip
            # less); later ones come from the sync process's watch
            vx.sync(plan_peers(known, net.name, me.node))
        except DataplaneError:
            pass  # the sync process programs them on its next pass
        routes = () if net.internal else (Route(dst="0.0.0.0/0"),)
        ipc = IPConfig(address=f"{ep.ip}/{prefix}", gateway=net.gateway)
        return Result(ips=(ipc,), routes=routes), mac_for(ep.ip)

    bargs = replace(args, stdin=bstdin)
    return bridge_plugin.cmd_add(bargs, lease)


def _claim(store: Any, net: Any, create_rev: int, me: Any, args: CmdArgs, names: tuple[str, ...],
           wanted: str) -> tuple[Any, list[Any]]:
    """Lease an address in one transaction per try; the endpoint and the endpoints read.

    Raises:
        CniError: 105 requested address taken, 7 network removed meanwhile.
        Exhausted, LeaseGone, StoreUnavailable.
    """

    for _round in range(8):
        known = store.endpoints(net.name)
        taken = [e.ip for e in known]
        if wanted:
            if wanted in taken or wanted == net.gateway:
                raise CniError(errors.ADDRESS_CONFLICT, f"address {wanted} is already in use on {net.name}")
            cands = [wanted]
        else:
            cands = list(alloc.candidates(net.subnet, net.gateway, taken, args.container_id))[:MAX_TRIES]
            if not cands:
                raise alloc.Exhausted(f"no free address left in {net.name}'s subnet {net.subnet}")
        for ip in cands:
            ep = EndpointRec(network=net.name, ip=ip, mac=mac_for(ip), node=me.node, vtep=me.advertise,
                             container_id=args.container_id, ifname=args.ifname, names=names)
            if store.claim(ep, me.lease, create_rev):
                return ep, known
        again = store.network(net.name)
        if again is None or again[1] != create_rev:
            raise errors.config_error(f"overlay network {net.name!r} was removed during the ADD")
        if wanted:
            raise CniError(errors.ADDRESS_CONFLICT, f"address {wanted} is already in use on {net.name}")
    raise CniError(errors.TRY_AGAIN_LATER, f"could not lease an address on {net.name}: too much contention")


# --- DEL ----------------------------------------------------------------------------------

def cmd_del(args: CmdArgs) -> None:
    """Detach: the bridge plugin's DEL, then the lease in the store and the local record.

    The store may be unreachable: the local record goes anyway and the sync process
    deletes the key when etcd answers again (keys of this node without a record), so a
    DEL never fails for the store. Idempotent.

    Raises:
        CniError: listing the teardown steps that failed.
    """

    conf = parse_conf(args.stdin)
    rec = records.get(conf.overlay_dir, conf.name, args.container_id, args.ifname)
    errs = ErrorList()
    bstdin = bridge_stdin(conf, rec.bridge if rec else "cni0", False, 0)
    try:
        bridge_plugin.cmd_del(replace(args, stdin=bstdin))
    except CniError as err:
        errs.collect(err)
    if rec is not None:
        records.remove(conf.overlay_dir, conf.name, args.container_id, args.ifname)
        try:
            me = node.read(conf.overlay_dir)
            Store(me.store, light=True).release(rec.endpoint)
        except (StoreError, node.NodeFileError):
            pass
    errs.raise_if_any()


# --- CHECK / STATUS / GC ------------------------------------------------------------------

def cmd_check(args: CmdArgs) -> None:
    """The bridge plugin's CHECK, plus: our record, the lease in the store, the VXLAN device.

    Raises: CniError naming the first problem (11 when the store cannot be asked).
    """

    conf = parse_conf(args.stdin)
    rec = records.get(conf.overlay_dir, conf.name, args.container_id, args.ifname)
    if rec is None:
        raise CniError(errors.NETLINK_FAILURE, f"no overlay endpoint record for {args.container_id}/{args.ifname}")
    me = _node(conf)
    store = Store(me.store, light=True)
    try:
        found = store.network(conf.name)
        held = {(e.container_id, e.ifname, e.ip) for e in store.endpoints(conf.name)}
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    if found is None:
        raise CniError(errors.NETLINK_FAILURE, f"overlay network {conf.name!r} is no longer in the store")
    bridge_plugin.cmd_check(replace(args, stdin=bridge_stdin(conf, rec.bridge, found[0].internal, me.mtu)))
    if not link_exists(vxlan_name(rec.vni)):
        raise CniError(errors.NETLINK_FAILURE, f"VXLAN device {vxlan_name(rec.vni)} is missing")
    if (args.container_id, args.ifname, rec.endpoint.ip) not in held:
        raise CniError(errors.LEASE_MISMATCH, f"the store holds no lease of {rec.endpoint.ip} for this container")


def cmd_status(args: CmdArgs) -> None:
    """Ready when the sync process runs and the store answers.

    Raises: CniError 50 otherwise (the message says which).
    """

    conf = parse_conf(args.stdin)
    try:
        me = _node(conf)
        Store(me.store, light=True).network(conf.name)
    except CniError as err:
        raise CniError(errors.NOT_AVAILABLE, err.msg) from None
    except StoreError as exc:
        raise CniError(errors.NOT_AVAILABLE, str(exc)) from None


def cmd_gc(args: CmdArgs) -> None:
    """The records (and leases) of attachments that are not valid; with none left on this
    host the VXLAN device goes, then the bridge plugin's GC (which removes the bridge once
    nothing uses it: the VXLAN device was its last port).

    Raises: CniError listing what could not be collected.
    """
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..cni.gc import valid_attachments

    conf = parse_conf(args.stdin)
    valid = valid_attachments(args.stdin)
    mine = records.all_local(conf.overlay_dir, conf.name)
    bridge = mine[0].bridge if mine else "cni0"
    errs = ErrorList()
    store = None
    try:
        store = Store(node.read(conf.overlay_dir).store)
    except (StoreError, node.NodeFileError):
        pass
    for rec in mine:
        ep = rec.endpoint
        if (ep.container_id, ep.ifname) in valid:
            continue
        records.remove(conf.overlay_dir, conf.name, ep.container_id, ep.ifname)
        if store is not None:
            try:
                store.release(ep)
            except StoreError:
                pass
    left = records.all_local(conf.overlay_dir, conf.name)
    if not left and mine:
        Vxlan(f"ovvx{mine[0].vni}", mine[0].vni).delete()
    try:
        bridge_plugin.cmd_gc(replace(args, stdin=bridge_stdin(conf, bridge, False, 0)))
    except CniError as err:
        errs.collect(err)
    errs.raise_if_any()


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check, status=cmd_status, gc=cmd_gc,
                    about="netctl overlay plugin", known_args=KNOWN_ARGS)


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
