"""Hand-built doctor facts: a healthy two-network host, and helpers to break it.

The host: ``my_net2`` 172.22.16.0/24 (bridge br-net2) with web1 .2 and web2 .3,
``other_net`` 172.22.17.0/24 (br-other) with db .2, the default ``bridge``
172.17.0.0/16 (netctl0) with legacy .2, and an uplink ``out0`` 10.99.0.1/24.
The firewall is the one our nftables driver installs (built by hand below).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runtime.doctor.facts import (
    Attachment,
    ContainerInfo,
    DnsAnswer,
    DnsdInfo,
    DoctorFacts,
    HostView,
    Link,
    Neighbour,
    NetworkInfo,
    NsView,
    PortInfo,
    ProbeResult,
    Route,
    RouteLookup,
    TargetFacts,
)
from runtime.doctor.netfilter import Action, Chain, Cond, Rule, Ruleset

NETS = {
    "my_net2": NetworkInfo("my_net2", "br-net2", ("172.22.16.0/24",), ("172.22.16.1",)),
    "other_net": NetworkInfo("other_net", "br-other", ("172.22.17.0/24",), ("172.22.17.1",)),
    "bridge": NetworkInfo("bridge", "netctl0", ("172.17.0.0/16",), ("172.17.0.1",), dns=False, builtin=True),
    "internal_net": NetworkInfo("internal_net", "br-int", ("172.22.18.0/24",), ("172.22.18.1",), internal=True),
}
SUBNET = {n: i.subnets[0] for n, i in NETS.items()}


def att(network: str, host: int, veth: str, ifname: str = "eth0", aliases: tuple[str, ...] = ()) -> Attachment:
    """An attachment like the bridge plugin's result: address, gateway, default route."""
    net = NETS[network]
    prefix = net.subnets[0].split("/")[1]
    base = net.subnets[0].rsplit(".", 1)[0]
    gw = net.gateways[0]
    routes = () if net.internal else (Route("0.0.0.0/0", ifname, gw),)
    return Attachment(network, ifname, (f"{base}.{host}/{prefix}",), gw, routes, veth, aliases,
                      (gw,) if net.dns else ())


def view_for(a: Attachment, *lookups: RouteLookup, neigh: tuple[Neighbour, ...] = ()) -> NsView:
    """A container namespace as ADD left it: lo, the interface, connected + default routes."""
    subnet = SUBNET[a.network]
    routes = [Route(subnet, a.ifname, None)] + [Route("default", a.ifname, r.gateway) for r in a.routes]
    return NsView(links=(Link("lo", 1, kind=""), Link(a.ifname, 2, kind="veth", addresses=a.addresses)),
                  routes=tuple(routes), neighbours=neigh, lookups=lookups)


def lookup(dst: str, dev: str = "eth0", gw: str | None = None) -> RouteLookup:
    return RouteLookup(dst, dev, gw)


def ctr(name: str, a: Attachment, *lookups: RouteLookup, ports: tuple[PortInfo, ...] = (),
        running: bool = True, neigh: tuple[Neighbour, ...] = ()) -> ContainerInfo:
    return ContainerInfo(name, (name.encode().hex() * 64)[:64], running, a.network,
                         f"/run/netctl/netns/{name}", None, (a,), ports,
                         view_for(a, *lookups, neigh=neigh) if running else None)


WEB1 = att("my_net2", 2, "veth1111aaaa")
WEB2 = att("my_net2", 3, "veth2222bbbb")
DB = att("other_net", 2, "veth3333cccc")
LEGACY = att("bridge", 2, "veth4444dddd")
SEALED = att("internal_net", 2, "veth5555eeee")


def nft_ruleset(*nets: str) -> Ruleset:
    """Our ``inet netctl`` table for ``nets`` (what plan.py + nftables.py install)."""
    chains: list[Chain] = []
    guard, into, out = [], [], []
    for name in nets:
        n = NETS[name]
        tag = f"netctl net={name}"
        h = name[:4]
        br = n.bridge

        def rule(conds: tuple[Cond, ...], kind: str, text: str, tag: str = tag) -> Rule:
            return Rule(conds, Action(kind), f'{text} comment "{tag}"', tag)

        if n.internal:
            guard.append((br, Action("jump", f"guard-{h}")))
            chains.append(Chain("nftables", "inet", "netctl", f"guard-{h}", (
                rule((Cond("oifname", "==", (br,)),), "return", f'oifname "{br}" return'),
                rule((Cond("daddr", "==", n.subnets),), "return", f"ip daddr {n.subnets[0]} return"),
                rule((), "drop", "drop"))))
            chains.append(Chain("nftables", "inet", "netctl", f"in-{h}", (
                rule((Cond("iifname", "==", (br,)),), "accept", f'iifname "{br}" accept'),
                rule((), "drop", "drop"))))
            into.append((br, Action("jump", f"in-{h}")))
            continue
        chains.append(Chain("nftables", "inet", "netctl", f"in-{h}", (
            rule((Cond("ct_state", "==", ("established", "related")),), "accept", "ct state established,related accept"),
            rule((Cond("ct_status", "==", ("dnat",)),), "accept", "ct status dnat accept"),
            rule((Cond("iifname", "==", (br,)),), "accept", f'iifname "{br}" accept'),
            rule((), "drop", "drop"))))
        chains.append(Chain("nftables", "inet", "netctl", f"out-{h}", (rule((), "accept", "accept"),)))
        into.append((br, Action("jump", f"in-{h}")))
        out.append((br, Action("jump", f"out-{h}")))
    forward = Chain("nftables", "inet", "netctl", "forward", (
        Rule((), Action("vmap", key="iifname", mapping=tuple(guard)), "iifname vmap @forward-guard"),
        Rule((), Action("vmap", key="oifname", mapping=tuple(into)), "oifname vmap @forward-in"),
        Rule((), Action("vmap", key="iifname", mapping=tuple(out)), "iifname vmap @forward-out"),
    ), hook="forward", type="filter", priority=0, policy="accept")
    return Ruleset((forward, *chains))


def host(*containers: Attachment, lookups: tuple[RouteLookup, ...] = (), ip_forward: bool = True,
         firewall: Ruleset | None = None, bridge_nf: bool = True, isolated: bool = False,
         dnsd_running: bool = True) -> HostView:
    """The host namespace with every network's bridge and the given containers' veths."""
    links = [Link("lo", 1), Link("out0", 2, kind="veth", addresses=("10.99.0.1/24",))]
    for i, n in enumerate(NETS.values()):
        links.append(Link(n.bridge, 10 + i, kind="bridge", addresses=(f"{n.gateways[0]}/{n.subnets[0].split('/')[1]}",)))
    for i, a in enumerate(containers):
        links.append(Link(a.host_veth, 20 + i, kind="veth", master=NETS[a.network].bridge, isolated=isolated,
                          port_state="forwarding"))
    listen = tuple((n.name, (n.gateways[0],)) for n in NETS.values() if n.dns)
    return HostView(NsView(tuple(links), lookups=lookups, ip_forward=ip_forward), bridge_nf,
                    firewall if firewall is not None else nft_ruleset(*NETS), (),
                    DnsdInfo(dnsd_running, 4242 if dnsd_running else None, listen))


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


def with_link(c: ContainerInfo, name: str, **kw: Any) -> ContainerInfo:
    """``c`` with one link of its view changed."""
    assert c.view is not None
    links = tuple(replace(lk, **kw) if lk.name == name else lk for lk in c.view.links)
    return replace(c, view=replace(c.view, links=links))


def host_with_link(h: HostView, name: str, **kw: Any) -> HostView:
    links = tuple(replace(lk, **kw) if lk.name == name else lk for lk in h.view.links)
    return replace(h, view=replace(h.view, links=links))
