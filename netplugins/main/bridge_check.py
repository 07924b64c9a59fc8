"""CHECK for the bridge plugin: compare the live kernel state with prevResult."""

from __future__ import annotations

import ipaddress

from ..cni.skel import CmdArgs
from ..cni.types import Result
from ..nl import sysctl
from ..nl.netns import NetnsGone, entered
from .bridge_conf import BridgeConf
from .bridge_plan import host_veth_name


def _prev_container_iface(prev: Result, ifname: str) -> tuple[int | None, str, str]:
    """Index, MAC and sandbox of the container interface in prevResult."""
    for idx, iface in enumerate(prev.interfaces):
        if iface.name == ifname and iface.sandbox:
            return idx, iface.mac, iface.sandbox
    return None, "", ""


def _prev_host_mac(prev: Result, name: str) -> str:
    return next((i.mac for i in prev.interfaces if i.name == name and not i.sandbox), "")


def _iface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | str:
    """Normalised form of an address, so that "fd00:0::2/64" equals "fd00::2/64"."""
    try:
        return ipaddress.ip_interface(cidr)
    except ValueError:
        return cidr


def check_attachment(conf: BridgeConf, args: CmdArgs, prev: Result) -> list[str]:
    """Everything that differs from what ADD built, as readable sentences ([] = healthy).

    Raises:
        CniError: 101 when netlink cannot be read.
    """
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..nl.bridge import IFF_PROMISC, NetlinkError, Rtnl, get_link

    problems: list[str] = []
    idx, want_mac, sandbox = _prev_container_iface(prev, args.ifname)
    if idx is None:
        problems.append(f"prevResult lists no container interface {args.ifname!r}")
    elif sandbox != args.netns:
        problems.append(f"prevResult puts {args.ifname} in {sandbox}, not in CNI_NETNS {args.netns}")
    host_name = host_veth_name(args.container_id, args.ifname)
    with Rtnl() as nl:
        br = get_link(nl, conf.bridge)
        if br is None or br.kind != "bridge":
            return problems + [f"bridge {conf.bridge!r} is missing"]
        host = get_link(nl, host_name)
        if host is None:
            return problems + [f"host veth {host_name} is missing"]
    for name, hlink in ((conf.bridge, br), (host_name, host)):
        mac = _prev_host_mac(prev, name)
        if mac and hlink.mac != mac.lower():
            problems.append(f"{name} has MAC {hlink.mac}, expected {mac}")
    if bool(br.flags & IFF_PROMISC) != conf.promisc:
        problems.append(f"bridge {conf.bridge} promiscuous mode is {'on' if br.flags & IFF_PROMISC else 'off'},"
                        f" the config says {'on' if conf.promisc else 'off'}")
    if host.master != br.index:
        problems.append(f"host veth {host_name} is not a port of {conf.bridge}")
    if not host.up:
        problems.append(f"host veth {host_name} is down")
    if not br.up:
        problems.append(f"bridge {conf.bridge} is down")
    try:
        with entered(args.netns), Rtnl() as cnl:
            link = get_link(cnl, args.ifname)
            if link is None:
                return problems + [f"interface {args.ifname!r} is missing in {args.netns}"]
            try:
                have = {_iface(a.cidr) for a in cnl.addresses(link.index)}
                routes = cnl.route_destinations()
            except NetlinkError as exc:
                return problems + [f"cannot read the container's addresses and routes: {exc}"]
    except NetnsGone:
        return problems + [f"netns {args.netns!r} does not exist"]
    if link.kind != "veth":
        problems.append(f"{args.ifname} is not a veth")
    if want_mac and link.mac != want_mac.lower():
        problems.append(f"{args.ifname} has MAC {link.mac}, expected {want_mac}")
    if host.peer and host.peer != link.index:
        problems.append(f"host veth is not the peer of {args.ifname}")
    if not link.up:
        problems.append(f"{args.ifname} is down")
    for ip in prev.ips:
        if ip.interface is not None and ip.interface != idx:
            continue
        if _iface(ip.address) not in have:
            problems.append(f"address {ip.address} is missing on {args.ifname}")
    for route in prev.routes:
        if str(ipaddress.ip_network(route.dst, strict=False)) not in routes:
            problems.append(f"route to {route.dst} is missing in the container")
    if conf.is_gateway:
        if any(ip.family == 4 for ip in prev.ips) and sysctl.read("net/ipv4/ip_forward") != "1":
            problems.append("net.ipv4.ip_forward is off in the host namespace")
        if any(ip.family == 6 for ip in prev.ips) and sysctl.read("net/ipv6/conf/all/forwarding") != "1":
            problems.append("IPv6 forwarding is off in the host namespace")
    return problems
