"""GC of the bridges themselves: the bridge plugin owns its bridge's lifetime.

ADD creates a network's bridge and marks it with the alias ``netctl net=<network>``
(nl/bridge.py ``bridge_mark``); DEL leaves it, as the reference does (the next container
may come at once). GC collects it once nothing uses it any more. "Used" is decided by
this plugin's own attachment records (``<stateDir>/<network>/``, after GC dropped the
stale ones) and by the kernel's count of the bridge's ports:

- a bridge with its network's mark, no record and no port is deleted (its gateway
  addresses go with it; the network's firewall rules went with its last record, see
  bridge.py ``_forget``);
- a marked bridge that still has ports is kept: links this plugin did not record use it
  (another runtime's containers, attached by an instance with another ``stateDir``);
- a bridge without the mark was there before (the host's, adopted through the ``bridge``
  key): only the gateway addresses this plugin puts on it come off, the bridge and its
  other links stay;
- marked bridges of *other* networks with no record here and no port are orphans (their
  network was removed while something still held the bridge, or its runtime lost its
  state) and are deleted as well, so a runtime's GC of any network collects them.

Another runtime sharing a network through the same ``stateDir`` shares its records, so
its containers keep the bridge; GC is exclusive with ADD/DEL per the spec, but an ADD of
another runtime racing a GC of an idle network can lose its bridge between creating it
and recording its attachment: that ADD then fails cleanly (rolled back) and can be retried.

GC has no result (spec: no stdout on success), so what it did to a bridge is logged at
WARNING: the plugin daemon relays a call's log lines on stderr, and so does a plugin run
in-process. The decisions are pure (:func:`plan_bridges`); the kernel work is below it.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cni import errors
from ..cni.errors import CniError
from ..cni.invoke import delegate, speaks_gc
from ..nl.bridge import BRIDGE_MARK_PREFIX, bridge_mark, delete_link
from ..nl.types import NetlinkError
from .attachments import Attachments
from .bridge_conf import BridgeConf

if TYPE_CHECKING:
    from ..cni.skel import CmdArgs
    from ..nl.host import HostNetlink

log = logging.getLogger("bridge")
#: a network name as CNI allows it: anyone may set an alias, and the name becomes a path
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class BridgeLink:
    """A bridge as GC reads it."""

    name: str
    #: IFLA_IFALIAS ("" when unset)
    alias: str
    #: how many links have it as their master
    ports: int
    #: its addresses (CIDR); read only for the network's own bridge
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class BridgePlan:
    """What GC does to bridges."""

    #: bridges to delete
    delete: tuple[str, ...] = ()
    #: gateway addresses (CIDR) to take off the network's unmarked bridge
    unaddress: tuple[str, ...] = ()
    #: one line per bridge touched or kept, for the runtime
    notes: tuple[str, ...] = ()


def gateway_cidrs(conf: BridgeConf) -> list[str]:
    """The gateway addresses ADD puts on the bridge for host-local style IPAM ranges
    (``ranges`` or the old ``subnet``): each range's gateway, else its first address
    (plan_gateways); none unless ``isGateway``."""
    if not conf.is_gateway:
        return []
    raw = conf.net.raw.get("ipam")
    ipam: dict[str, Any] = raw if isinstance(raw, dict) else {}
    ranges = [r for rs in ipam.get("ranges") or [] if isinstance(rs, list) for r in rs if isinstance(r, dict)]
    if not ranges and ipam.get("subnet"):
        ranges = [ipam]
    out = []
    for r in ranges:
        try:
            net = ipaddress.ip_network(str(r.get("subnet")), strict=False)
            gw = ipaddress.ip_address(r["gateway"]) if r.get("gateway") else net.network_address + 1
        except (ValueError, KeyError):
            continue  # IPAM validates its own ranges; a bad one has no address on the bridge
        cidr = f"{gw}/{net.prefixlen}"
        if cidr not in out:
            out.append(cidr)
    return out


def _owner(alias: str) -> str | None:
    """The network a marked bridge belongs to (None: not marked, or not a network name)."""
    name = alias[len(BRIDGE_MARK_PREFIX):] if alias.startswith(BRIDGE_MARK_PREFIX) else ""
    return name if NAME_RE.fullmatch(name) else None


def plan_bridges(network: str, bridge: str, gateways: list[str], links: list[BridgeLink],
                 in_use: set[str]) -> BridgePlan:
    """GC's decisions for ``network`` (whose bridge is ``bridge``) and the orphans.

    ``links``: the namespace's bridges; ``in_use``: the networks that still have
    attachment records in this plugin's ``stateDir``.
    """
    delete: list[str] = []
    unaddress: tuple[str, ...] = ()
    notes: list[str] = []
    mark = bridge_mark(network)
    for link in links:
        owner = _owner(link.alias)
        if link.name == bridge and network not in in_use:
            if link.alias != mark:
                have = {ipaddress.ip_interface(a) for a in link.addresses}
                unaddress = tuple(c for c in gateways if ipaddress.ip_interface(c) in have)
                if unaddress:
                    notes.append(f"kept bridge {bridge}: netctl did not create it (it has no '{mark}' alias); "
                                 f"removed only netctl's addresses ({', '.join(unaddress)}) and firewall rules, "
                                 "its other links stay")
            elif link.ports:
                notes.append(f"kept bridge {bridge} of network {network}: {link.ports} port(s) that are no "
                             "attachment of the network still use it")
            else:
                delete.append(bridge)
                notes.append(f"removed bridge {bridge} of network {network}: no attachment left")
        elif link.name != bridge and owner is not None and owner not in in_use and not link.ports:
            delete.append(link.name)
            notes.append(f"removed bridge {link.name} of network {owner}: no attachment left")
    return BridgePlan(tuple(delete), unaddress, tuple(notes))


# --- kernel (the current network namespace, through the netlink boundary) -----------------

def _read_bridges(nl: HostNetlink, own: str) -> list[BridgeLink]:
    links = nl.links()
    ports: dict[int, int] = {}
    for lk in links:
        if lk.master:
            ports[lk.master] = ports.get(lk.master, 0) + 1
    out = []
    for lk in links:
        if lk.kind != "bridge":
            continue
        addrs = tuple(a.cidr for a in nl.addresses(lk.index)) if lk.name == own else ()
        out.append(BridgeLink(lk.name, lk.alias, ports.get(lk.index, 0), addrs))
    return out


def _unaddress(nl: HostNetlink, bridge: str, cidrs: tuple[str, ...]) -> None:
    link = nl.get_link(bridge) if cidrs else None
    if link is None:
        return
    for cidr in cidrs:
        try:
            nl.del_addr(link.index, cidr)
        except NetlinkError as exc:
            if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
                raise CniError(errors.NETLINK_FAILURE, f"failed to remove {cidr} from bridge {bridge}",
                               str(exc)) from None


def collect_ipam(ipam_type: str, args: CmdArgs) -> None:
    """Forward GC to the IPAM plugin (the same stdin, as for ADD), if it has GC.

    Our host-local releases the leases of invalid attachments and, when none is left and
    the runtime does not keep the network, deletes the lease database. An IPAM plugin older
    than CNI 1.1.0 (the Debian reference host-local) is skipped with a note: the network's
    GC still collects the bridge, and that plugin's leases stay until their DEL.

    Raises:
        CniError: what the IPAM plugin's GC reported, or 103 when it is not on the path.
    """
    if speaks_gc(ipam_type, args.env, args.path):
        delegate(ipam_type, "GC", args.stdin, args.env, args.path)
    else:
        log.warning("IPAM plugin %r has no GC (it supports CNI < 1.1.0): its leases stay until "
                    "their DEL", ipam_type)


def collect_bridges(conf: BridgeConf) -> None:
    """Apply :func:`plan_bridges`, holding the network's attachment lock (under which an
    ADD records its attachment).

    Raises:
        CniError: 101 when netlink refuses; OSError when the lock cannot be taken.
    """
    # GC is no hot path: the pyroute2 implementation (the one that lists every link)
    from ..nl.pyroute import Pyroute

    with Pyroute() as nl, Attachments(conf.state_dir, conf.name).locked():
        links = _read_bridges(nl, conf.bridge)
        owners = {_owner(lk.alias) for lk in links} - {None}
        in_use = {net for net in owners | {conf.name} if net and not Attachments(conf.state_dir, net).empty()}
        plan = plan_bridges(conf.name, conf.bridge, gateway_cidrs(conf), links, in_use)
        for name in plan.delete:
            delete_link(nl, name)
        _unaddress(nl, conf.bridge, plan.unaddress)
    for note in plan.notes:
        log.warning("%s", note)
