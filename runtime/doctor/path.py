"""Which way the traffic goes: networks, interfaces and the address to probe (pure).

Used twice: by ``gather`` before reading the kernel (to know which routes to look up
and where to send the probe) and by ``diagnose`` (to know which hops to check).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Literal

from .facts import Attachment, ContainerInfo, Network, TargetFacts

PathKind = Literal["bridged", "routed", "external", "hostport", "none"]


@dataclass(frozen=True)
class PathPlan:
    """The path between SOURCE and TARGET."""

    #: bridged: same network; routed: container on another network; external: an
    #: address outside netctl's containers; hostport: a published port on the host;
    #: none: no address to go to
    kind: PathKind
    #: the source interface the traffic leaves through
    src: Attachment | None = None
    #: the target container's interface it arrives on
    dst: Attachment | None = None
    #: the address the probe goes to
    address: str | None = None
    #: the destination after DNAT (hostport)
    final: str | None = None

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version if self.address else 4


def is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def egress(source: ContainerInfo) -> Attachment | None:
    """The attachment with the default route (first one with addresses otherwise)."""
    with_ips = [a for a in source.attachments if a.addresses]
    for att in with_ips:
        if any(r.dst in ("0.0.0.0/0", "default") for r in att.routes):
            return att
    return with_ips[0] if with_ips else None


def _holding(container: ContainerInfo, address: str) -> Attachment | None:
    return next((a for a in container.attachments if address in a.ips()), None)


def _on_subnet(source: ContainerInfo, networks: tuple[Network, ...], address: str) -> Attachment | None:
    for att in source.attachments:
        net = next((n for n in networks if n.name == att.network), None)
        if net is not None and att.addresses and net.contains(address):
            return att
    return None


def plan_path(source: ContainerInfo, target: TargetFacts, networks: tuple[Network, ...]) -> PathPlan:
    """Choose the path; the kernel's route lookup may later correct the source interface."""
    ctr = target.container
    if target.kind == "hostport":
        src = egress(source)
        dst = ctr.attachments[0] if ctr is not None and ctr.attachments else None
        addr = None
        mapping = target.mapping
        if mapping is not None and mapping.host_ip and not is_loopback(mapping.host_ip) \
                and not ipaddress.ip_address(mapping.host_ip).is_unspecified:
            addr = mapping.host_ip
        elif src is not None and src.gateway:
            addr = src.gateway  # the host as the container sees it
        final = dst.ips(4)[0] if dst is not None and dst.ips(4) else None
        return PathPlan("hostport", src, dst, addr, final)
    if ctr is not None:
        if target.address is not None:
            dst = _holding(ctr, target.address)
            src = source.attachment(dst.network) if dst is not None else None
            if src is not None and src.addresses:
                return PathPlan("bridged", src, dst, target.address)
            return PathPlan("routed", egress(source), dst, target.address)
        for att in source.attachments:
            peer = ctr.attachment(att.network)
            if att.addresses and peer is not None and peer.ips(4):
                return PathPlan("bridged", att, peer, peer.ips(4)[0])
        dst = next((a for a in ctr.attachments if a.ips(4)), None)
        if dst is None:
            return PathPlan("none", egress(source), None, None)
        return PathPlan("routed", egress(source), dst, dst.ips(4)[0])
    if target.address is None:
        return PathPlan("none", egress(source))
    local = _on_subnet(source, networks, target.address)
    if local is not None:
        return PathPlan("bridged", local, None, target.address)
    return PathPlan("external", egress(source), None, target.address)


def with_route(plan: PathPlan, source: ContainerInfo, dev: str | None) -> PathPlan:
    """The plan with the source interface the kernel actually routes through."""
    att = next((a for a in source.attachments if a.ifname == dev), None) if dev else None
    return plan if att is None else dataclasses.replace(plan, src=att)
