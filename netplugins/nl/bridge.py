"""Kernel side of the bridge plugin: bridges, veth pairs, addresses, routes (pyroute2).

Thin and idempotent: ``ensure_*`` creates or accepts what exists; deletes tolerate absence.
Every function takes an open IPRoute for the namespace it acts in.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from ..cni import errors
from ..cni.errors import CniError
from . import sysctl

if TYPE_CHECKING:
    from pyroute2 import IPRoute

log = logging.getLogger(__name__)


def _netlink_error(exc: Exception) -> int:
    return int(getattr(exc, "code", 0) or 0)


def get_link(ipr: IPRoute, name: str) -> Any | None:
    """The link message for ``name``, or None."""
    idx = ipr.link_lookup(ifname=name)
    if not idx:
        return None
    return ipr.get_links(idx[0])[0]


def link_kind(msg: Any) -> str:
    info = msg.get_attr("IFLA_LINKINFO")
    return (info.get_attr("IFLA_INFO_KIND") if info is not None else "") or ""


def ensure_bridge(ipr: IPRoute, name: str, mtu: int = 0, promisc: bool = False) -> Any:
    """Create bridge ``name`` if missing (safe when many ADDs race), set it up; return it.

    Raises:
        CniError: 7 when ``name`` exists and is not a bridge, 101 when netlink refuses.
    """
    if get_link(ipr, name) is None:
        try:
            kw: dict[str, Any] = {"ifname": name, "kind": "bridge"}
            if mtu:
                kw["mtu"] = mtu
            ipr.link("add", **kw)
        except Exception as exc:  # noqa: BLE001 - NetlinkError; EEXIST = another ADD won the race
            if _netlink_error(exc) != errno.EEXIST:
                raise CniError(errors.NETLINK_FAILURE, f"could not add bridge {name!r}", str(exc)) from None
    link = get_link(ipr, name)
    if link is None:
        raise CniError(errors.NETLINK_FAILURE, f"bridge {name!r} vanished while being set up")
    if link_kind(link) != "bridge":
        raise CniError(errors.INVALID_CONFIG, f"{name!r} already exists but is not a bridge",
                       f"it is a {link_kind(link) or 'device'} link")
    # the bridge would take on the lowest MAC of its ports and change as containers come and
    # go (ARP caches of containers then point nowhere): pin its current MAC, as the reference does
    mac = link.get_attr("IFLA_ADDRESS")
    changes: dict[str, Any] = {"state": "up", "address": mac}
    if promisc:
        changes["flags"] = link["flags"] | 0x100  # IFF_PROMISC
    try:
        ipr.link("set", index=link["index"], **changes)
    except Exception as exc:  # noqa: BLE001
        raise CniError(errors.NETLINK_FAILURE, f"could not set bridge {name!r} up", str(exc)) from None
    sysctl.write(f"net/ipv6/conf/{name}/accept_ra", "0") if sysctl.read(
        f"net/ipv6/conf/{name}/accept_ra") is not None else None
    return get_link(ipr, name)


def addresses(ipr: IPRoute, index: int) -> list[str]:
    """CIDR strings of the global-scope addresses on link ``index``."""
    out = []
    for msg in ipr.get_addr(index=index):
        if msg["scope"] != 0:
            continue
        addr = msg.get_attr("IFA_ADDRESS")
        if addr:
            out.append(f"{addr}/{msg['prefixlen']}")
    return out


def ensure_gateway(ipr: IPRoute, bridge: str, index: int, cidr: str, force: bool) -> None:
    """Put ``cidr`` on the bridge; refuse a different address of that family unless ``force``.

    Raises:
        CniError: 7 when the bridge carries another address and ``force`` is off, 101 netlink.
    """
    want = ipaddress.ip_interface(cidr)
    for have_text in addresses(ipr, index):
        have = ipaddress.ip_interface(have_text)
        if have.version != want.version or have == want:
            continue
        if want.version == 6 and not (have.network.overlaps(want.network)):
            continue  # v6 bridges legitimately carry several prefixes
        if not force:
            raise CniError(errors.INVALID_CONFIG,
                           f"{bridge!r} already has an IP address different from {cidr}",
                           f"it has {have_text}; set forceAddress to replace it")
        ipr.addr("del", index=index, address=str(have.ip), prefixlen=have.network.prefixlen)
    try:
        ipr.addr("add", index=index, address=str(want.ip), prefixlen=want.network.prefixlen)
    except Exception as exc:  # noqa: BLE001 - EEXIST: concurrent ADDs (containerd#3507)
        if _netlink_error(exc) != errno.EEXIST:
            raise CniError(errors.NETLINK_FAILURE, f"failed to set bridge address {cidr}", str(exc)) from None


def create_veth(ipr: IPRoute, host_name: str, peer_name: str, container_fd: int, mtu: int) -> None:
    """Create the pair with the peer placed straight into the container namespace.

    A leftover host end of the same name (a crashed earlier ADD of this attachment) is ours
    by construction of the name: it is removed first.

    Raises:
        CniError: 101 when netlink refuses.
    """
    delete_link(ipr, host_name)
    kw: dict[str, Any] = {"ifname": host_name, "kind": "veth",
                          "peer": {"ifname": peer_name, "net_ns_fd": container_fd}}
    if mtu:
        kw["mtu"] = mtu
        kw["peer"]["mtu"] = mtu
    try:
        ipr.link("add", **kw)
    except Exception as exc:  # noqa: BLE001
        raise CniError(errors.NETLINK_FAILURE, f"failed to create veth pair {host_name}", str(exc)) from None


def attach_port(ipr: IPRoute, host_name: str, bridge_index: int, hairpin: bool, isolated: bool) -> Any:
    """Enslave the host end to the bridge, set hairpin / port isolation, bring it up.

    Raises:
        CniError: 101 when netlink refuses.
    """
    link = get_link(ipr, host_name)
    if link is None:
        raise CniError(errors.NETLINK_FAILURE, f"host veth {host_name!r} is missing")
    try:
        ipr.link("set", index=link["index"], master=bridge_index, state="up")
        if hairpin or isolated:
            # IFLA_BRPORT_MODE is hairpin; IFLA_BRPORT_ISOLATED keeps isolated ports from
            # talking to each other while they still reach the bridge (gateway, host): icc=false
            ipr.brport("set", index=link["index"], mode=int(hairpin), isolated=int(isolated))
    except Exception as exc:  # noqa: BLE001
        raise CniError(errors.NETLINK_FAILURE, f"failed to attach {host_name} to the bridge", str(exc)) from None
    sysctl.write(f"net/ipv6/conf/{host_name}/accept_ra", "0") if sysctl.read(
        f"net/ipv6/conf/{host_name}/accept_ra") is not None else None
    return get_link(ipr, host_name)


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete link ``name``; True if it existed. Absence is success."""
    idx = ipr.link_lookup(ifname=name)
    if not idx:
        return False
    try:
        ipr.link("del", index=idx[0])
    except Exception as exc:  # noqa: BLE001
        if _netlink_error(exc) in (errno.ENODEV, errno.ENOENT):
            return False
        raise CniError(errors.NETLINK_FAILURE, f"failed to delete {name}", str(exc)) from None
    return True


def configure_container_iface(ipr: IPRoute, peer_name: str, ifname: str, mac: str,
                              ips: list[tuple[str, str | None]], routes: list[tuple[str, str | None]]) -> Any:
    """Inside the container: rename, MAC, arp_notify, addresses, up, routes.

    ``ips`` are (cidr, gateway); ``routes`` are (dst, next hop or None).

    Raises:
        CniError: 101 when netlink refuses (message names the step).
    """
    link = get_link(ipr, peer_name)
    if link is None:
        raise CniError(errors.NETLINK_FAILURE, f"container end {peer_name!r} is missing")
    index = link["index"]
    step = "rename"
    try:
        changes: dict[str, Any] = {"ifname": ifname}
        if mac:
            changes["address"] = mac
        ipr.link("set", index=index, **changes)
        step = "sysctl"
        # gratuitous ARP when the address comes up: a reused IP gets a new MAC (moby#36069)
        sysctl.write(f"net/ipv4/conf/{ifname}/arp_notify", "1")
        if any(":" in cidr for cidr, _ in ips):
            sysctl.write(f"net/ipv6/conf/{ifname}/disable_ipv6", "0")
            sysctl.write(f"net/ipv6/conf/{ifname}/accept_dad", "0")
        for cidr, _ in ips:
            step = f"address {cidr}"
            iface = ipaddress.ip_interface(cidr)
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        step = "up"
        ipr.link("set", index=index, state="up")
        for dst, gw in routes:
            step = f"route {dst}"
            kw: dict[str, Any] = {"dst": dst, "oif": index}
            if gw:
                kw["gateway"] = gw
            try:
                ipr.route("add", **kw)
            except Exception as exc:  # noqa: BLE001
                # a container on several networks has one default route: the first network's
                # (Docker's default gateway priority); a later network's identical dst is kept
                if _netlink_error(exc) != errno.EEXIST:
                    raise
                log.info("route to %s already exists in the container: keeping it", dst)
    except CniError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CniError(errors.NETLINK_FAILURE, f"failed to configure {ifname} ({step})", str(exc)) from None
    return get_link(ipr, ifname)
