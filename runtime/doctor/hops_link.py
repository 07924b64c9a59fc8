"""Hops about links: interfaces, routes, the bridge and its ports, neighbours (pure)."""

from __future__ import annotations

import ipaddress

from netplugins.nl.host import Route

from .facts import Attachment, ContainerInfo
from .walk import Walk

#: neighbour states that mean "it answered"
NEIGH_OK = ("REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP")


def _iface(w: Walk, c: ContainerInfo, att: Attachment, hop: str) -> bool:
    """Check one container interface; True when up with its addresses."""
    view = c.view
    if view is None:
        w.info(hop, f"{c.name}'s namespace could not be read")
        return False
    link = view.link(att.ifname)
    if link is None:
        w.fail(hop, f"{att.ifname} is missing in {c.name}", f"links: {', '.join(lk.name for lk in view.links)}",
               code="link-missing", rank=2, fix=f"reconnect: netctl disconnect {att.network} {c.name}, then "
               f"netctl connect {att.network} {c.name}")
        return False
    state = f"flags {'UP' if link.up else 'DOWN'}{',LOWER_UP' if link.lower_up else ''}"
    has = view.addresses(link)
    missing = [a for a in att.addresses if a not in has]
    if not link.up:
        w.fail(hop, f"{att.ifname} in {c.name} is down", state, code="link-down", rank=2,
               fix=f"bring it up: {w.exec_in(c)} ip link set {att.ifname} up")
    elif missing:
        w.fail(hop, f"{att.ifname} in {c.name} lacks {', '.join(missing)}",
               f"has {', '.join(has) or 'no address'}", code="address-missing", rank=2,
               why=f"{att.ifname} in {c.name} lacks {missing[0]}",
               fix=f"put it back: {w.exec_in(c)} ip addr add {missing[0]} dev {att.ifname}")
    else:
        carrier = "" if link.lower_up else " (no carrier: its host end is down)"
        w.ok(hop, f"{att.ifname} in {c.name} is up{carrier}: {', '.join(has)}", state)
    return link.up and not missing


def check_interface(w: Walk) -> None:
    if w.plan.src is not None:
        _iface(w, w.src, w.plan.src, "interface")


def _same(route: Route, want: Route) -> bool:
    def dst(r: Route) -> str:
        return "default" if r.dst in ("default", "0.0.0.0/0", "::/0") else str(ipaddress.ip_network(r.dst, strict=False))
    return dst(route) == dst(want) and (not want.gateway or route.gateway == want.gateway)


def check_route(w: Walk) -> None:
    """SOURCE's route to the address (and, for a container, the route back)."""
    plan, s, lookup = w.plan, w.src, w.src_lookup()
    if lookup is None or plan.src is None:
        return
    if lookup.ok:
        _route_back(w, f"{lookup.dst} {'via ' + lookup.gateway if lookup.gateway else 'on-link'} dev {lookup.dev}")
        return
    att, net, view = plan.src, w.net(plan.src), s.view
    assert view is not None
    summary = f"no route to {lookup.dst}: {lookup.error}"
    evidence = f"routes in {s.name}: {'; '.join(view.route_text(r) for r in view.routes) or 'none'}"
    missing = _missing(att, view.routes)
    if w.failed("interface"):
        w.fail("route", f"{summary} ({att.ifname} is down, so its routes are gone)", evidence)
    elif net is not None and net.internal and plan.kind in ("external", "routed"):
        w.fail("route", f"{summary} (internal networks get no default route)", evidence)
    elif missing:
        w.fail("route", summary, evidence, f"the CNI result of {att.network} asked for: {missing}",
               code="route-missing", rank=3, why=f"the route {missing} is missing in {s.name}",
               fix=f"put it back: {w.exec_in(s)} ip route add {missing}")
    else:
        w.fail("route", summary, evidence, code="no-route", rank=3, why=f"{s.name} has no route to {lookup.dst}",
               fix=f"connect {s.name} to a network that reaches {lookup.dst}")


def _missing(att: Attachment, routes: tuple[Route, ...]) -> str | None:
    """The first route of the CNI result that the namespace lacks, as ``ip route`` words."""
    for r in att.routes:
        if not any(_same(h, r) for h in routes):
            dst = "default" if r.dst in ("0.0.0.0/0", "::/0") else r.dst
            gw = r.gateway or att.gateway
            return f"{dst}{' via ' + gw if gw else ''} dev {att.ifname}"
    return None


def _route_back(w: Walk, there: str) -> None:
    """The route hop, once the way there is known: checks the target container's way back."""
    t, plan = w.dst, w.plan
    view = t.view if t is not None else None
    back = None
    if view is not None and plan.src is not None and plan.dst is not None and plan.kind in ("routed", "bridged"):
        back = next((view.lookup(a) for a in plan.src.ips() if view.lookup(a) is not None), None)
    if t is None or view is None or back is None or plan.dst is None:
        w.ok("route", there)
    elif back.ok:
        w.ok("route", there, f"route back from {t.name}: {back.dst} "
             f"{f'via {back.gateway}' if back.gateway else 'on-link'} dev {back.dev}")
    elif (net := w.net(plan.dst)) is not None and net.internal:
        w.fail("route", f"{there}, but {t.name} has no way back: {net.name} is internal (no default route)")
    else:
        missing = _missing(plan.dst, view.routes)
        w.fail("route", f"{there}, but {t.name} has no route back to {back.dst}: {back.error}", code="no-route-back",
               rank=3, why=f"{t.name} has no route back to {back.dst}"
               + (f" (the route {missing} is missing)" if missing else ""),
               fix=f"put it back: {w.exec_in(t)} ip route add {missing}" if missing
               else f"connect {t.name} to a network that reaches {back.dst}")


def _port(w: Walk, owner: str, att: Attachment, bridge: str) -> str | None:
    """Check one host veth; its evidence when it is fine, else None (a ✘ hop)."""
    link = w.host_link(att.host_veth)
    what = f"{att.host_veth} ({owner} {att.ifname})"
    if link is None:
        w.fail("bridge", f"{what} is missing on the host", code="link-missing", rank=2,
               why=f"the host end {att.host_veth} of {owner}'s {att.ifname} is missing",
               fix=f"reconnect: netctl disconnect {att.network} {owner}, then netctl connect {att.network} {owner}")
    elif not link.up:
        w.fail("bridge", f"{what} is down on the host", "flags DOWN", code="link-down", rank=2,
               why=f"{att.host_veth} ({owner}'s {att.ifname} on the host) is down",
               fix=f"bring it up: ip link set {att.host_veth} up")
    elif (master := w.facts.host.view.name(link.master)) != bridge:
        w.fail("bridge", f"{what} is not a port of {bridge}", f"master: {master or 'none'}",
               code="not-enslaved", rank=2, why=f"{att.host_veth} is not a port of {bridge}",
               fix=f"put it back: ip link set {att.host_veth} master {bridge}")
    else:
        return f"{what} up, port of {bridge} ({link.port_state or '?'}{', isolated' if link.isolated else ''})"
    return None


def check_bridges(w: Walk) -> None:
    """The bridges on the path and both host veths: present, up, enslaved."""
    ends = [(w.sname, w.plan.src)] + ([(w.dst.name, w.plan.dst)] if w.dst is not None else [])
    evidence = []
    seen: set[str] = set()
    for owner, att in ends:
        net = w.net(att)
        if att is None or net is None or not net.bridge:
            continue
        if net.bridge not in seen:
            seen.add(net.bridge)
            br = w.host_link(net.bridge)
            if br is None or not br.up:
                state = "missing" if br is None else "down"
                w.fail("bridge", f"bridge {net.bridge} of {net.name} is {state}", code=f"bridge-{state}", rank=2,
                       why=f"the bridge {net.bridge} of {net.name} is {state}",
                       fix=f"bring it up: ip link set {net.bridge} up" if br is not None
                       else f"reconnect the containers of {net.name} (netctl disconnect/connect)")
                return
            addrs = w.facts.host.view.addresses(br)
            evidence.append(f"bridge {net.bridge} ({net.name}) up: {', '.join(addrs) or 'no address'}")
        ev = _port(w, owner, att, net.bridge)
        if ev is None:
            return
        evidence.append(ev)
    if evidence:
        w.ok("bridge", f"{' and '.join(sorted(seen))} up; host veths up and enslaved", *evidence)


def check_target_interface(w: Walk) -> None:
    if w.dst is not None and w.plan.dst is not None:
        _iface(w, w.dst, w.plan.dst, "target interface")


def check_isolation(w: Walk) -> None:
    """icc=false: bridge port isolation between the two containers' host veths."""
    plan = w.plan
    if plan.kind != "bridged" or plan.src is None or plan.dst is None or w.dst is None:
        return
    a, b = w.host_link(plan.src.host_veth), w.host_link(plan.dst.host_veth)
    if a is None or b is None or a is b:
        return  # a container talking to itself never crosses the bridge
    flags = f"{a.name} isolated {'on' if a.isolated else 'off'}, {b.name} isolated {'on' if b.isolated else 'off'}"
    if not (a.isolated and b.isolated):
        w.ok("isolation", "the bridge ports are not isolated from each other (icc on)", flags)
        return
    net = w.net(plan.src)
    name = net.name if net is not None else plan.src.network
    w.fail("isolation", f"icc is off on {name}: both bridge ports are isolated", flags, code="icc-off", rank=4,
           why=f"icc is off on {name}: its containers cannot talk to each other (bridge port isolation)",
           fix=f"icc is off on {name}: put them on a network with icc on (netctl create NET, then "
           f"netctl connect NET {w.sname} and netctl connect NET {w.dst.name})")


def check_neighbour(w: Walk) -> None:
    """SOURCE's ARP/NDP entry for the next hop (read after the probe)."""
    lookup, view = w.src_lookup(), w.src.view
    if lookup is None or not lookup.ok or view is None or lookup.kind == "local":
        return
    hop_addr = lookup.gateway or lookup.dst
    n = view.neighbour(hop_addr)
    if n is None:
        w.info("neighbour", f"no neighbour entry for {hop_addr} on {lookup.dev}")
    elif n.state in NEIGH_OK:
        w.ok("neighbour", f"{hop_addr} is at {n.lladdr} ({n.state})")
    else:
        w.fail("neighbour", f"{hop_addr} does not answer ARP on {view.name(n.index)} ({n.state})", code="neighbour", rank=8,
               why=f"{hop_addr} does not answer ARP from {w.sname}",
               fix=f"check that {hop_addr} is up and on the same bridge as {w.sname}")
