"""What doctor read from netctl state and the kernel, as frozen dataclasses (pure data).

The gathering layer fills these in; the diagnosis layer only reads them, so a unit test
can describe any broken setup by hand.
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from netplugins.firewall.trace import TraceResult
from netplugins.nl.host import Neighbour, Route
from netplugins.nl.types import RT_SCOPE_LINK, Addr, Link, NetlinkError

from ..models import Network, PortMapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from netplugins.nl.host import HostNetlink

ProbeOutcome = Literal["ok", "refused", "timeout", "unreachable", "error"]
DnsOutcome = Literal["answer", "nxdomain", "empty", "timeout", "error"]
TargetKind = Literal["container", "name", "address", "hostport"]


@dataclass(frozen=True)
class RouteLookup:
    """``ip route get DST``: where the kernel sends a packet, or why it cannot."""

    dst: str
    dev: str | None = None
    gateway: str | None = None
    src: str | None = None
    #: "unicast", "local", "unreachable", "prohibit", "blackhole"
    kind: str = "unicast"
    #: the kernel's error, e.g. "Network is unreachable"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.kind in ("unicast", "local")


@dataclass(frozen=True)
class NsView:
    """What one network namespace shows, in the netlink boundary's own types."""

    links: tuple[Link, ...] = ()
    #: every link's addresses (link-scope ones too)
    addrs: tuple[Addr, ...] = ()
    #: the main table's unicast routes
    routes: tuple[Route, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    #: ``ip route get`` for the addresses on the path
    lookups: tuple[RouteLookup, ...] = ()
    #: net.ipv4.ip_forward; None when it could not be read
    ip_forward: bool | None = None
    #: net.ipv6.conf.all.forwarding; None when it could not be read (no IPv6)
    ip6_forward: bool | None = None

    @classmethod
    def read(cls, nl: HostNetlink, lookups: tuple[str, ...] = ()) -> NsView:
        """Links, addresses, unicast routes, neighbours and the route lookups for ``lookups``,
        through the netlink boundary (sysctls are left None: ``gather`` reads them).

        Raises:
            NetlinkError: a dump failed (a failed lookup is a fact, not an error).
        """
        links = tuple(nl.links())
        names = {lk.index: lk.name for lk in links}
        found = []
        for dst in lookups:
            try:
                r = nl.route_get(dst)
            except NetlinkError as exc:  # the kernel's words, as ``ip route get`` prints them
                found.append(RouteLookup(dst, kind="unreachable", error=exc.strerror or errno.errorcode.get(exc.code)))
                continue
            found.append(RouteLookup(dst, names.get(r.oif), r.gateway, r.prefsrc, r.type,
                                     None if r.type in ("unicast", "local") else r.type))
        return cls(links, tuple(nl.addresses()), tuple(r for r in nl.routes() if r.type == "unicast"),
                   tuple(nl.neighbours()), tuple(found))

    def link(self, name: str) -> Link | None:
        return next((lk for lk in self.links if lk.name == name), None)

    def name(self, index: int) -> str:
        """The name of the link with ``index`` ("" for none)."""
        return next((lk.name for lk in self.links if lk.index == index and index), "")

    def addresses(self, link: Link) -> tuple[str, ...]:
        """``link``'s addresses without link-scope ones (fe80::), as ``ip addr`` users read them."""
        return tuple(a.cidr for a in self.addrs if a.index == link.index and a.scope != RT_SCOPE_LINK)

    def route_text(self, r: Route) -> str:
        """A route as ``ip route`` prints it."""
        return " ".join([r.dst] + (["via", r.gateway] if r.gateway else []) + (["dev", self.name(r.oif)] if r.oif else []))

    def lookup(self, dst: str) -> RouteLookup | None:
        return next((lk for lk in self.lookups if lk.dst == dst), None)

    def neighbour(self, address: str) -> Neighbour | None:
        return next((n for n in self.neighbours if n.ip == address), None)


@dataclass(frozen=True)
class Attachment:
    """A container's interface on one network (from its CNI result)."""

    network: str
    ifname: str
    #: CIDRs, e.g. "172.22.16.2/24"
    addresses: tuple[str, ...] = ()
    gateway: str | None = None
    #: the routes the CNI result asked for (``oif`` 0: the result names no device)
    routes: tuple[Route, ...] = ()
    #: the host end of the veth pair, as the CNI result lists it ("" when it names none)
    host_veth: str = ""
    aliases: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()

    def ips(self, family: int | None = None) -> tuple[str, ...]:
        """Plain addresses, optionally of one family (4 or 6)."""
        out = (a.split("/")[0] for a in self.addresses)
        return tuple(a for a in out if family is None or ipaddress.ip_address(a).version == family)


@dataclass(frozen=True)
class ContainerInfo:
    """A container from state, with the kernel view of its namespace."""

    name: str
    id: str
    running: bool = True
    #: network_mode: a network name, "host", "none" or "container:<id>"
    mode: str = "bridge"
    netns: str = ""
    #: for a container sharing another's namespace: the owner's name
    joined_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    #: None when the namespace could not be read (stopped container)
    view: NsView | None = None

    def attachment(self, network: str) -> Attachment | None:
        return next((a for a in self.attachments if a.network == network), None)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(a.network for a in self.attachments)


@dataclass(frozen=True)
class TargetFacts:
    """The TARGET argument, resolved."""

    kind: TargetKind
    #: as the user wrote it
    text: str
    #: the container behind it, when one is known (by name, alias, address or published port)
    container: ContainerInfo | None = None
    #: the address traffic is sent to (None when it could not be found)
    address: str | None = None
    port: int | None = None
    #: for ``host:PORT``: the mapping from state
    mapping: PortMapping | None = None


@dataclass(frozen=True)
class DnsAnswer:
    """A query for ``name`` sent to ``server`` from inside the source namespace."""

    name: str
    server: str
    outcome: DnsOutcome
    addresses: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class DnsdInfo:
    """dnsd's configuration and process."""

    running: bool = False
    pid: int | None = None
    #: the agent that restarts dnsd when it dies (None: nothing does)
    supervisor: int | None = None
    #: network name -> addresses dnsd listens on for it
    listen: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def listens_for(self, network: str) -> tuple[str, ...]:
        return next((addrs for name, addrs in self.listen if name == network), ())


@dataclass(frozen=True)
class ProbeResult:
    """Traffic actually sent from the source namespace."""

    proto: str
    address: str
    port: int | None
    outcome: ProbeOutcome
    detail: str = ""
    rtt_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def what(self) -> str:
        """"ping 10.0.0.2", "tcp 10.0.0.2:80"."""
        return f"ping {self.address}" if self.proto == "icmp" else f"{self.proto} {self.address}:{self.port}"


@dataclass(frozen=True)
class RuleCheck:
    """A firewall driver's check of netctl's own rules for one network or attachment."""

    #: "network front", "published ports of srv"
    what: str
    #: the driver that checked ("nftables", "iptables", "none")
    driver: str
    #: what is missing or altered, in the driver's words; () = intact
    problems: tuple[str, ...] = ()
    #: the rules could not be read
    error: str | None = None


@dataclass(frozen=True)
class HostView:
    """The host namespace (where netctl runs)."""

    view: NsView = field(default_factory=NsView)
    #: net.bridge.bridge-nf-call-iptables: bridged frames go through the IP firewall
    bridge_nf_call: bool | None = None
    dnsd: DnsdInfo = field(default_factory=DnsdInfo)
    #: the kernel's trace of the probe's packets; None when no probe crossed the host
    trace: TraceResult | None = None
    #: the firewall drivers' own check of netctl's rules on the path
    rules: tuple[RuleCheck, ...] = ()


@dataclass(frozen=True)
class DoctorFacts:
    """Everything the diagnosis needs."""

    source: ContainerInfo
    target: TargetFacts
    networks: tuple[Network, ...]
    host: HostView
    #: "icmp", "tcp" or "udp"
    proto: str = "icmp"
    dns: DnsAnswer | None = None
    probe: ProbeResult | None = None
    #: overlay paths only (hops_overlay.OverlayFacts)
    overlay: Any = None

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)
