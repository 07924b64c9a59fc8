"""What ``netctl graph`` draws, built from netctl state and kernel facts (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..doctor.facts import ContainerInfo, DnsdInfo, Network


@dataclass(frozen=True)
class GNetwork:
    """A network box: its addressing, bridge and dnsd listeners."""

    name: str
    driver: str = "bridge"
    bridge: str = ""
    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    internal: bool = False
    icc: bool = True
    dns: bool = False
    builtin: bool = False
    #: "up", "down", "missing", or "" when the kernel was not read
    bridge_state: str = ""
    #: addresses dnsd listens on for this network (port 53)
    dns_listen: tuple[str, ...] = ()


@dataclass(frozen=True)
class GEndpoint:
    """A veth pair: the container's ``ifname`` and the host's ``host_veth`` on a network."""

    network: str
    ifname: str
    addresses: tuple[str, ...] = ()
    host_veth: str = ""
    #: host end: "up", "down", "missing" or ""
    veth_state: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class GPort:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def host_text(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        return f"[{ip}]:{self.host_port}" if ":" in ip else f"{ip}:{self.host_port}"


@dataclass(frozen=True)
class GContainer:
    name: str
    id: str
    running: bool = True
    #: network_mode as stored: a network, "host", "none" or "container:<id>"
    mode: str = "bridge"
    #: the owner's name when the container lives in another one's namespace
    joined_to: str | None = None
    endpoints: tuple[GEndpoint, ...] = ()
    ports: tuple[GPort, ...] = ()


@dataclass(frozen=True)
class GRemote:
    """A container of another host on an overlay network, reached through the tunnel."""

    network: str
    node: str
    vtep: str          # that host's underlay address (the tunnel's far end)
    name: str
    address: str


@dataclass(frozen=True)
class GraphModel:
    networks: tuple[GNetwork, ...] = ()
    containers: tuple[GContainer, ...] = ()
    #: pid of the running dnsd (None: not running)
    dnsd_pid: int | None = None
    #: overlays: this host's node name and the containers of the other hosts
    node: str = ""
    remotes: tuple[GRemote, ...] = ()

    def remote_hosts(self, network: str | None = None) -> list[tuple[str, str]]:
        """(node, vtep) of the other hosts, in name order (of one overlay, or of all)."""
        return sorted({(r.node, r.vtep) for r in self.remotes if network is None or r.network == network})

    def members(self, network: str) -> list[GContainer]:
        """Containers with an endpoint on ``network``, in model order."""
        return [c for c in self.containers if any(e.network == network for e in c.endpoints)]

    def title(self) -> str:
        """"netctl: 1 network, 2 containers" (singular for one, plural otherwise)."""
        return f"netctl: {_count(len(self.networks), 'network')}, {_count(len(self.containers), 'container')}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _state(links: dict[str, bool], name: str) -> str:
    if not links:
        return ""
    if name not in links:
        return "missing"
    return "up" if links[name] else "down"


def build_model(networks: tuple[Network, ...], containers: tuple[ContainerInfo, ...],
                links: dict[str, bool], dnsd: DnsdInfo, node: str = "",
                remotes: tuple[GRemote, ...] = ()) -> GraphModel:
    """The picture's model. ``links`` maps host link names to "administratively up"
    (empty: the kernel was not read, states stay unknown)."""
    nets = []
    for n in networks:
        if n.driver not in ("bridge", "overlay"):
            continue  # host and none have nothing to draw unless a container uses them
        nets.append(GNetwork(
            name=n.name, driver=n.driver, bridge=n.bridge, subnets=tuple(s.subnet for s in n.subnets),
            gateways=tuple(s.gateway for s in n.subnets if s.gateway),
            internal=n.internal, icc=n.icc, dns=n.dns, builtin=n.builtin,
            bridge_state=_state(links, n.bridge) if n.bridge else "",
            dns_listen=dnsd.listens_for(n.name) if dnsd.running else ()))
    ctrs = []
    for c in containers:
        eps: tuple[GEndpoint, ...] = ()
        if c.joined_to is None:
            eps = tuple(GEndpoint(a.network, a.ifname, a.addresses, a.host_veth, _state(links, a.host_veth),
                                  a.aliases) for a in c.attachments)
        ports = tuple(GPort(p.host_port, p.container_port, p.protocol, p.host_ip) for p in c.ports)
        ctrs.append(GContainer(c.name, c.id, c.running, c.mode, c.joined_to, eps, ports))
    # by name, digits compared as numbers (web2 before web10): state order is creation
    # time at one-second resolution, which reads as random in a picture
    ctrs.sort(key=lambda c: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", c.name)])
    return GraphModel(tuple(nets), tuple(ctrs), dnsd.pid, node,
                      tuple(sorted(remotes, key=lambda r: (r.network, r.node, r.name))))
