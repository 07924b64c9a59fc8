"""CHECK for the bridge plugin: compare the live kernel state with prevResult."""

from __future__ import annotations

import ipaddress

from ..cni.skel import CmdArgs
from ..cni.types import Result
from ..nl import sysctl
from ..nl.netns import NetnsGone, entered
from .bridge_conf import BridgeConf
from .bridge_plan import host_veth_name


def _prev_container_iface(prev: Result, ifname: str, netns: str) -> tuple[int | None, str]:
    for idx, iface in enumerate(prev.interfaces):
        if iface.name == ifname and iface.sandbox:
            return idx, iface.mac
    return None, ""


def check_attachment(conf: BridgeConf, args: CmdArgs, prev: Result) -> list[str]:
    """Everything that differs from what ADD built, as readable sentences ([] = healthy)."""
    from ..nl.bridge import get_link, link_kind
    from ..nl.links import iproute

    problems: list[str] = []
    idx, want_mac = _prev_container_iface(prev, args.ifname, args.netns)
    if idx is None:
        problems.append(f"prevResult lists no container interface {args.ifname!r}")
    with iproute() as ipr:
        br = get_link(ipr, conf.bridge)
        if br is None or link_kind(br) != "bridge":
            return problems + [f"bridge {conf.bridge!r} is missing"]
        host = get_link(ipr, host_veth_name(args.container_id, args.ifname))
        if host is None:
            return problems + [f"host veth {host_veth_name(args.container_id, args.ifname)} is missing"]
        if host.get_attr("IFLA_MASTER") != br["index"]:
            problems.append(f"host veth {host.get_attr('IFLA_IFNAME')} is not a port of {conf.bridge}")
        if not host["flags"] & 1:
            problems.append(f"host veth {host.get_attr('IFLA_IFNAME')} is down")
        if not br["flags"] & 1:
            problems.append(f"bridge {conf.bridge} is down")
        host_peer = host.get_attr("IFLA_LINK")
    try:
        with entered(args.netns), iproute() as cipr:
            link = get_link(cipr, args.ifname)
            if link is None:
                return problems + [f"interface {args.ifname!r} is missing in {args.netns}"]
            if link_kind(link) != "veth":
                problems.append(f"{args.ifname} is not a veth")
            if want_mac and link.get_attr("IFLA_ADDRESS") != want_mac:
                problems.append(f"{args.ifname} has MAC {link.get_attr('IFLA_ADDRESS')}, expected {want_mac}")
            if host_peer and host_peer != link["index"]:
                problems.append(f"host veth is not the peer of {args.ifname}")
            if not link["flags"] & 1:
                problems.append(f"{args.ifname} is down")
            have = {f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}" for m in cipr.get_addr(index=link["index"])}
            for ip in prev.ips:
                if ip.interface is not None and ip.interface != idx:
                    continue
                if ip.address not in have:
                    problems.append(f"address {ip.address} is missing on {args.ifname}")
            routes = set()
            for r in cipr.get_routes(table=254):
                dst = r.get_attr("RTA_DST")
                fam = ipaddress.ip_network("::/0" if r["family"] == 10 else "0.0.0.0/0")
                routes.add(f"{dst}/{r['dst_len']}" if dst else str(fam))
            for route in prev.routes:
                if str(ipaddress.ip_network(route.dst, strict=False)) not in routes:
                    problems.append(f"route to {route.dst} is missing in the container")
    except NetnsGone:
        problems.append(f"netns {args.netns!r} does not exist")
    if conf.is_gateway:
        if any(ip.family == 4 for ip in prev.ips) and sysctl.read("net/ipv4/ip_forward") != "1":
            problems.append("net.ipv4.ip_forward is off in the host namespace")
        if any(ip.family == 6 for ip in prev.ips) and sysctl.read("net/ipv6/conf/all/forwarding") != "1":
            problems.append("IPv6 forwarding is off in the host namespace")
    return problems
