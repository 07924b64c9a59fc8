"""Hand-built doctor facts: a healthy two-network host, and helpers to break it.

The host: ``my_net2`` 172.22.16.0/24 (bridge br-net2) with web1 .2 and web2 .3,
``other_net`` 172.22.17.0/24 (br-other) with db .2, the default ``bridge``
172.17.0.0/16 (netctl0) with legacy .2, and an uplink ``out0`` 10.99.0.1/24.
The firewall is described by what the kernel traced for the probe (``nft -a monitor``
lines, built by hand below in the form the integration tests see) and by the drivers'
check of netctl's rules (``RuleCheck``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netplugins.firewall.trace import TraceResult, parse_trace
from netplugins.nl.host import Neighbour, Route
from netplugins.nl.types import IFF_LOWER_UP, IFF_UP, Addr, Link
from runtime.doctor.facts import (
    Attachment,
    ContainerInfo,
    DnsAnswer,
    DnsdInfo,
    DoctorFacts,
    HostView,
    NsView,
    ProbeResult,
    RouteLookup,
    RuleCheck,
    TargetFacts,
)
from runtime.models import Network, PortMapping, Subnet


def network(name: str, bridge: str, subnet: str, gateway: str, **kw: Any) -> Network:
    """A network as netctl stores it."""
    return Network(f"{name:0<64}"[:64], name, kw.pop("driver", "bridge"), "2026-01-01T00:00:00Z", bridge,
                   [Subnet(subnet, gateway)], **kw)


NETS = {
    "my_net2": network("my_net2", "br-net2", "172.22.16.0/24", "172.22.16.1"),
    "other_net": network("other_net", "br-other", "172.22.17.0/24", "172.22.17.1"),
    "bridge": network("bridge", "netctl0", "172.17.0.0/16", "172.17.0.1", dns=False, builtin=True),
    "internal_net": network("internal_net", "br-int", "172.22.18.0/24", "172.22.18.1", internal=True),
}
SUBNET = {n: i.subnets[0].subnet for n, i in NETS.items()}


def att(network: str, host: int, veth: str, ifname: str = "eth0", aliases: tuple[str, ...] = ()) -> Attachment:
    """An attachment like the bridge plugin's result: address, gateway, default route."""
    net = NETS[network]
    prefix = net.subnets[0].subnet.split("/")[1]
    base = net.subnets[0].subnet.rsplit(".", 1)[0]
    gw = net.subnets[0].gateway
    routes = () if net.internal else (Route("0.0.0.0/0", gateway=gw),)
    return Attachment(network, ifname, (f"{base}.{host}/{prefix}",), gw, routes, veth, aliases,
                      (gw,) if net.dns else ())


def link(name: str, index: int, kind: str = "", master: int = 0, up: bool = True, lower_up: bool = True,
         isolated: bool | None = None, port_state: str | None = None) -> Link:
    """A link as the netlink boundary returns it."""
    flags = (IFF_UP if up else 0) | (IFF_LOWER_UP if lower_up else 0)
    return Link(index, name, flags, "", 1500, kind, master, 0, isolated=isolated, port_state=port_state)


def view_for(a: Attachment, *lookups: RouteLookup, neigh: tuple[Neighbour, ...] = ()) -> NsView:
    """A container namespace as ADD left it: lo, the interface (index 2), connected + default routes."""
    subnet = SUBNET[a.network]
    routes = [Route(subnet, 2)] + [Route("default", 2, r.gateway) for r in a.routes]
    return NsView(links=(link("lo", 1), link(a.ifname, 2, "veth")), addrs=tuple(Addr(2, c, 0) for c in a.addresses),
                  routes=tuple(routes), neighbours=neigh, lookups=lookups)


def lookup(dst: str, dev: str = "eth0", gw: str | None = None) -> RouteLookup:
    return RouteLookup(dst, dev, gw)


def ctr(name: str, a: Attachment, *lookups: RouteLookup, ports: tuple[PortMapping, ...] = (),
        running: bool = True, neigh: tuple[Neighbour, ...] = ()) -> ContainerInfo:
    return ContainerInfo(name, (name.encode().hex() * 64)[:64], running, a.network,
                         f"/run/netctl/netns/{name}", None, (a,), ports,
                         view_for(a, *lookups, neigh=neigh) if running else None)


WEB1 = att("my_net2", 2, "veth1111aaaa")
WEB2 = att("my_net2", 3, "veth2222bbbb")
DB = att("other_net", 2, "veth3333cccc")
LEGACY = att("bridge", 2, "veth4444dddd")
SEALED = att("internal_net", 2, "veth5555eeee")


OWN = "netctl_doctor_0"


def traced(src: str, dst: str, iif: str, oif: str, *events: str, proto: str = "icmp") -> list[str]:
    """The kernel's lines for one probe packet: our own trace table at prerouting, then
    ``events`` ("inet netctl forward rule ... (verdict ...)") under a new trace id, as
    the kernel gives a forwarded packet."""
    lines = [f'trace id a1 inet {OWN} pre packet: iif "{iif}" ip saddr {src} ip daddr {dst} ip protocol {proto}',
             f"trace id a1 inet {OWN} pre rule ip saddr {src} ip daddr {dst} meta nftrace set 1 # handle 3 "
             "(verdict continue)",
             f"trace id a1 inet {OWN} pre policy accept "]
    where = ""
    for ev in events:
        here = " ".join(ev.split()[:3])
        if here.split()[:2] != where.split()[:2]:
            lines.append(f'trace id b2 {here} packet: iif "{iif}" oif "{oif}" ip saddr {src} ip daddr {dst}')
        where = here
        lines.append(f"trace id b2 {ev}")
    return lines


def trace(*lines: str, legacy: tuple[str, ...] = (), error: str | None = None) -> TraceResult:
    return TraceResult(OWN, () if error else parse_trace(list(lines)), error, legacy)


def jump(role: str, net: str, handle: int = 8) -> str:
    """Our forward chain's dispatch into a network's chain (``in-othe`` for other_net)."""
    key = "oifname" if role == "in" else "iifname"
    return f"inet netctl forward rule {key} vmap @forward-{role} # handle {handle} (verdict jump {role}-{net[:4]})"


def own(role: str, net: str, rule: str, verdict: str, handle: int = 14) -> str:
    """A rule of a network's chain in our table, with its owner tag."""
    return (f'inet netctl {role}-{net[:4]} rule {rule} comment "netctl net={net}" # handle {handle} '
            f"(verdict {verdict})")


def same_network() -> TraceResult:
    """web1 -> web2 on my_net2: accepted by the same-bridge rule."""
    return trace(*traced("172.22.16.2", "172.22.16.3", "br-net2", "br-net2", jump("in", "my_net2"),
                         own("in", "my_net2", 'iifname "br-net2" accept', "accept")))


def cross_network() -> TraceResult:
    """web1 -> db: dropped by other_net's isolation."""
    return trace(*traced("172.22.16.2", "172.22.17.2", "br-net2", "br-other", jump("in", "other_net"),
                         own("in", "other_net", "drop", "drop", 21)))


def outside(*extra: str) -> TraceResult:
    """web1 -> 10.99.0.2: accepted by my_net2's out chain, masqueraded (then ``extra``)."""
    return trace(*traced("172.22.16.2", "10.99.0.2", "br-net2", "out0", jump("out", "my_net2", 9),
                         own("out", "my_net2", "accept", "accept", 17), *extra,
                         "inet netctl postrouting rule iifname vmap @postrouting-out # handle 10 (verdict jump nat-my_n)",
                         own("nat", "my_net2", 'oifname != "br-net2" ip saddr 172.22.16.0/24 masquerade', "accept", 19)))


def intact(*nets: str) -> tuple[RuleCheck, ...]:
    return tuple(RuleCheck(f"network {n}", "nftables") for n in nets)


def host(*containers: Attachment, lookups: tuple[RouteLookup, ...] = (), ip_forward: bool = True,
         trace: TraceResult | None = None, rules: tuple[RuleCheck, ...] = (), bridge_nf: bool = True,
         isolated: bool = False, dnsd_running: bool = True, ip6_forward: bool | None = None) -> HostView:
    """The host namespace with every network's bridge and the given containers' veths."""
    links = [link("lo", 1), link("out0", 2, "veth")]
    addrs = [Addr(2, "10.99.0.1/24", 0)]
    for i, n in enumerate(NETS.values()):
        links.append(link(n.bridge, 10 + i, "bridge"))
        addrs.append(Addr(10 + i, f"{n.subnets[0].gateway}/{n.subnets[0].subnet.split('/')[1]}", 0))
    for i, a in enumerate(containers):
        master = 10 + list(NETS).index(a.network)
        links.append(link(a.host_veth, 20 + i, "veth", master, isolated=isolated, port_state="forwarding"))
    listen = tuple((n.name, (n.subnets[0].gateway,)) for n in NETS.values() if n.dns)
    return HostView(NsView(tuple(links), tuple(addrs), lookups=lookups, ip_forward=ip_forward, ip6_forward=ip6_forward),
                    bridge_nf, DnsdInfo(dnsd_running, 4242 if dnsd_running else None, listen=listen), trace, rules)


def facts(source: ContainerInfo, target: TargetFacts, host_view: HostView, *, proto: str = "icmp",
          probe: ProbeResult | None = None, dns: DnsAnswer | None = None) -> DoctorFacts:
    return DoctorFacts(source, target, tuple(NETS.values()), host_view, proto, dns, probe)


def ping(addr: str, ok: bool = True, outcome: str = "timeout") -> ProbeResult:
    if ok:
        return ProbeResult("icmp", addr, None, "ok", "reply in 0.1 ms", 0.1)
    return ProbeResult("icmp", addr, None, outcome, "no reply within 1 s")  # type: ignore[arg-type]


def answer(name: str, server: str, *addrs: str) -> DnsAnswer:
    return DnsAnswer(name, server, "answer" if addrs else "nxdomain", addrs, "NOERROR" if addrs else "NXDOMAIN")


def replace(obj: Any, **kw: Any) -> Any:
    return dataclasses.replace(obj, **kw)


def _changed(lk: Link, kw: dict[str, Any]) -> Link:
    """``lk`` with ``kw`` applied; ``up``/``lower_up`` set or clear its flags."""
    flags = lk.flags
    for key, bit in (("up", IFF_UP), ("lower_up", IFF_LOWER_UP)):
        if key in kw:
            flags = flags | bit if kw.pop(key) else flags & ~bit
    return replace(lk, flags=flags, **kw)


def with_link(c: ContainerInfo, name: str, **kw: Any) -> ContainerInfo:
    """``c`` with one link of its view changed."""
    assert c.view is not None
    links = tuple(_changed(lk, dict(kw)) if lk.name == name else lk for lk in c.view.links)
    return replace(c, view=replace(c.view, links=links))


def host_with_link(h: HostView, name: str, **kw: Any) -> HostView:
    links = tuple(_changed(lk, dict(kw)) if lk.name == name else lk for lk in h.view.links)
    return replace(h, view=replace(h.view, links=links))
