"""Pure planning for the bridge plugin: names, gateways, routes, the result."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from ..cni.digest import attachment_digest
from ..cni.types import DNS, Interface, IPConfig, Result, Route
from .bridge_conf import BridgeConf


def host_veth_name(container_id: str, ifname: str) -> str:
    """``veth`` + 8 hex of a hash of (container ID, ifname): DEL finds it without the namespace.

    15 characters fit IFNAMSIZ; 8 hex keep collisions negligible per host (like CNI's
    uniqueID-derived names).
    """
    return f"veth{attachment_digest(container_id, ifname)[:8]}"


def random_mac() -> str:
    """A random unicast, locally administered MAC (what the kernel would pick for a veth).

    Choosing it here saves reading the link back for the result; an explicit MAC also
    stops udev's MACAddressPolicy from changing it later.
    """
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class Gateway:
    """A gateway address to put on the bridge: ``cidr`` like "10.1.0.1/24"."""

    cidr: str

    @property
    def ip(self) -> str:
        return self.cidr.split("/", 1)[0]

    @property
    def family(self) -> int:
        return 6 if ":" in self.cidr else 4


def plan_gateways(conf: BridgeConf, ips: tuple[IPConfig, ...]) -> tuple[tuple[IPConfig, ...], tuple[Gateway, ...]]:
    """Fill in each address's gateway (network + 1 when IPAM gave none and isGateway), and
    the gateway addresses the bridge must carry (reference calcGateways)."""
    out_ips = []
    gateways: list[Gateway] = []
    for ip in ips:
        iface = ipaddress.ip_interface(ip.address)
        gw = ip.gateway
        if not gw and conf.is_gateway:
            gw = str(iface.network.network_address + 1)
        out_ips.append(IPConfig(address=ip.address, gateway=gw, interface=2))
        if conf.is_gateway and gw:
            cidr = f"{gw}/{iface.network.prefixlen}"
            if all(g.cidr != cidr for g in gateways):
                gateways.append(Gateway(cidr))
    return tuple(out_ips), tuple(gateways)


def plan_routes(conf: BridgeConf, ips: tuple[IPConfig, ...], routes: tuple[Route, ...]) -> tuple[Route, ...]:
    """IPAM routes, plus a default route per family when isDefaultGateway and none has a gw."""
    out = list(routes)
    if conf.is_default_gateway:
        for family, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            gw = next((ip.gateway for ip in ips if ip.family == family and ip.gateway), None)
            if gw is None:
                continue
            if any(r.dst == default and r.gw for r in out):
                continue
            out = [r for r in out if r.dst != default]
            out.append(Route(dst=default, gw=gw))
    return tuple(out)


def route_gateway(route: Route, ips: tuple[IPConfig, ...]) -> str | None:
    """The next hop for ``route``: its own gw, else the same-family address gateway
    (reference ConfigureIface)."""
    if route.gw:
        return route.gw
    family = 6 if ":" in route.dst else 4
    return next((ip.gateway for ip in ips if ip.family == family and ip.gateway), None)


def plan_result(conf: BridgeConf, bridge_mac: str, host_veth: str, host_mac: str,
                ifname: str, cont_mac: str, netns: str, ips: tuple[IPConfig, ...],
                routes: tuple[Route, ...], ipam_dns: DNS, mtu: int) -> Result:
    """The ADD result: [bridge, host veth, container interface], addresses on index 2."""
    dns = ipam_dns if conf.dns.is_empty() else conf.dns
    return Result(
        interfaces=(Interface(name=conf.bridge, mac=bridge_mac),
                    Interface(name=host_veth, mac=host_mac),
                    Interface(name=ifname, mac=cont_mac, sandbox=netns, mtu=mtu)),
        ips=ips,
        routes=routes,
        dns=dns,
    )
