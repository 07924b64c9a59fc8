"""Hops about links: interfaces, routes, the bridge and its ports, neighbours (pure)."""

from __future__ import annotations

import ipaddress

from .facts import Attachment, ContainerInfo, Route
from .walk import Walk

#: neighbour states that mean "it answered"
NEIGH_OK = ("REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP")


def _iface(w: Walk, c: ContainerInfo, att: Attachment, hop: str) -> bool:
    """Check one container interface; True when up with its addresses."""
    view = c.view
    if view is None:
        w.found.info(hop, f"{c.name}'s namespace could not be read")
        return False
    link = view.link(att.ifname)
    fix_pre = w.exec_in(c)
    if link is None:
        w.found.fail(hop, f"{att.ifname} is missing in {c.name}", f"links: {', '.join(lk.name for lk in view.links)}",
                     cause=w.found.cause("link-missing", 2, f"{att.ifname} is missing in {c.name}",
                                         f"reconnect: netctl disconnect {att.network} {c.name}, then "
                                         f"netctl connect {att.network} {c.name}", hop))
        return False
    state = f"flags {'UP' if link.up else 'DOWN'}{',LOWER_UP' if link.lower_up else ''}"
    if not link.up:
        w.found.fail(hop, f"{att.ifname} in {c.name} is down", state,
                     cause=w.found.cause("link-down", 2, f"{att.ifname} in {c.name} is down",
                                         f"bring it up: {fix_pre} ip link set {att.ifname} up", hop))
        return False
    missing = [a for a in att.addresses if a not in link.addresses]
    if missing:
        w.found.fail(hop, f"{att.ifname} in {c.name} lacks {', '.join(missing)}",
                     f"has {', '.join(link.addresses) or 'no address'}",
                     cause=w.found.cause("address-missing", 2, f"{att.ifname} in {c.name} lacks {missing[0]}",
                                         f"put it back: {fix_pre} ip addr add {missing[0]} dev {att.ifname}", hop))
        return False
    carrier = "" if link.lower_up else " (no carrier: its host end is down)"
    w.found.ok(hop, f"{att.ifname} in {c.name} is up{carrier}: {', '.join(link.addresses)}", state)
    return True


def check_interface(w: Walk) -> None:
    if w.plan.src is not None:
        _iface(w, w.src, w.plan.src, "interface")


def _same(route: Route, want: Route) -> bool:
    def dst(r: Route) -> str:
        return "default" if r.dst in ("default", "0.0.0.0/0", "::/0") else str(ipaddress.ip_network(r.dst, strict=False))
    return dst(route) == dst(want) and (not want.gateway or route.gateway == want.gateway)


def check_route(w: Walk) -> None:
    """SOURCE's route to the address (and, for a container, the route back)."""
    plan, s = w.plan, w.src
    lookup = w.src_lookup()
    if lookup is None or plan.src is None:
        return
    if lookup.ok:
        how = f"{lookup.dst} {'via ' + lookup.gateway if lookup.gateway else 'on-link'} dev {lookup.dev}"
        _route_back(w, how)
        return
    att = plan.src
    net = w.net(att)
    view = s.view
    assert view is not None
    have = [r.text() for r in view.routes]
    evidence = f"routes in {s.name}: {'; '.join(have) or 'none'}"
    if w.failed("interface"):
        w.found.fail("route", f"no route to {lookup.dst}: {lookup.error} ({att.ifname} is down, so its routes are gone)",
                     evidence)
        return
    if net is not None and net.internal and plan.kind in ("external", "routed"):
        w.found.fail("route", f"no route to {lookup.dst}: {lookup.error} (internal networks get no default route)",
                     evidence)
        return
    missing = _missing(att, view.routes)
    if missing:
        w.found.fail("route", f"no route to {lookup.dst}: {lookup.error}", evidence,
                     f"the CNI result of {att.network} asked for: {missing}",
                     cause=w.found.cause("route-missing", 3, f"the route {missing} is missing in {s.name}",
                                         f"put it back: {w.exec_in(s)} ip route add {missing}", "route"))
        return
    w.found.fail("route", f"no route to {lookup.dst}: {lookup.error}", evidence,
                 cause=w.found.cause("no-route", 3, f"{s.name} has no route to {lookup.dst}",
                                     f"connect {s.name} to a network that reaches {lookup.dst}", "route"))


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
    if t is None or t.view is None or plan.src is None or plan.dst is None or plan.kind not in ("routed", "bridged"):
        w.found.ok("route", there)
        return
    view = t.view
    back = next((view.lookup(a) for a in plan.src.ips() if view.lookup(a) is not None), None)
    if back is None:
        w.found.ok("route", there)
        return
    if back.ok:
        via = f"via {back.gateway}" if back.gateway else "on-link"
        w.found.ok("route", there, f"route back from {t.name}: {back.dst} {via} dev {back.dev}")
        return
    net = w.net(plan.dst)
    if net is not None and net.internal:
        w.found.fail("route", f"{there}, but {t.name} has no way back: {net.name} is internal (no default route)")
        return
    missing = _missing(plan.dst, view.routes)
    fix = (f"put it back: {w.exec_in(t)} ip route add {missing}" if missing
           else f"connect {t.name} to a network that reaches {back.dst}")
    w.found.fail("route", f"{there}, but {t.name} has no route back to {back.dst}: {back.error}",
                 cause=w.found.cause("no-route-back", 3, f"{t.name} has no route back to {back.dst}"
                                     + (f" (the route {missing} is missing)" if missing else ""), fix, "route"))


def _port(w: Walk, owner: str, att: Attachment, bridge: str, hop: str) -> tuple[bool, str]:
    """Check one host veth; (ok, evidence)."""
    link = w.host_link(att.host_veth)
    what = f"{att.host_veth} ({owner} {att.ifname})"
    if link is None:
        w.found.fail(hop, f"{what} is missing on the host", cause=w.found.cause(
            "link-missing", 2, f"the host end {att.host_veth} of {owner}'s {att.ifname} is missing",
            f"reconnect: netctl disconnect {att.network} {owner}, then netctl connect {att.network} {owner}", hop))
        return False, ""
    if not link.up:
        w.found.fail(hop, f"{what} is down on the host", "flags DOWN", cause=w.found.cause(
            "link-down", 2, f"{att.host_veth} ({owner}'s {att.ifname} on the host) is down",
            f"bring it up: ip link set {att.host_veth} up", hop))
        return False, ""
    if link.master != bridge:
        w.found.fail(hop, f"{what} is not a port of {bridge}", f"master: {link.master or 'none'}",
                     cause=w.found.cause("not-enslaved", 2, f"{att.host_veth} is not a port of {bridge}",
                                         f"put it back: ip link set {att.host_veth} master {bridge}", hop))
        return False, ""
    return True, f"{what} up, port of {bridge} ({link.port_state or '?'}{', isolated' if link.isolated else ''})"


def check_bridges(w: Walk) -> None:
    """The bridges on the path and both host veths: present, up, enslaved."""
    plan = w.plan
    ends: list[tuple[str, Attachment]] = []
    if plan.src is not None:
        ends.append((w.sname, plan.src))
    if plan.dst is not None and w.dst is not None:
        ends.append((w.dst.name, plan.dst))
    evidence = []
    seen: set[str] = set()
    for owner, att in ends:
        net = w.net(att)
        if net is None or not net.bridge:
            continue
        if net.bridge not in seen:
            seen.add(net.bridge)
            br = w.host_link(net.bridge)
            if br is None or not br.up:
                state = "missing" if br is None else "down"
                w.found.fail("bridge", f"bridge {net.bridge} of {net.name} is {state}", cause=w.found.cause(
                    f"bridge-{state}", 2, f"the bridge {net.bridge} of {net.name} is {state}",
                    f"bring it up: ip link set {net.bridge} up" if br is not None
                    else f"reconnect the containers of {net.name} (netctl disconnect/connect)", "bridge"))
                return
            evidence.append(f"bridge {net.bridge} ({net.name}) up: {', '.join(br.addresses) or 'no address'}")
        ok, ev = _port(w, owner, att, net.bridge, "bridge")
        if not ok:
            return
        evidence.append(ev)
    if evidence:
        w.found.ok("bridge", f"{' and '.join(sorted(seen))} up; host veths up and enslaved", *evidence)


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
    net = w.net(plan.src)
    flags = f"{a.name} isolated {'on' if a.isolated else 'off'}, {b.name} isolated {'on' if b.isolated else 'off'}"
    if a.isolated and b.isolated:
        name = net.name if net is not None else plan.src.network
        w.found.fail("isolation", f"icc is off on {name}: both bridge ports are isolated", flags,
                     cause=w.found.cause(
                         "icc-off", 4, f"icc is off on {name}: its containers cannot talk to each other "
                         "(bridge port isolation)",
                         f"icc is off on {name}: put them on a network with icc on (netctl create NET, then "
                         f"netctl connect NET {w.sname} and netctl connect NET {w.dst.name})", "isolation"))
        return
    w.found.ok("isolation", "the bridge ports are not isolated from each other (icc on)", flags)


def check_neighbour(w: Walk) -> None:
    """SOURCE's ARP/NDP entry for the next hop (read after the probe)."""
    lookup = w.src_lookup()
    view = w.src.view
    if lookup is None or not lookup.ok or view is None or lookup.kind == "local":
        return
    hop_addr = lookup.gateway or lookup.dst
    n = view.neighbour(hop_addr)
    if n is None:
        w.found.info("neighbour", f"no neighbour entry for {hop_addr} on {lookup.dev}")
        return
    if n.state in NEIGH_OK:
        w.found.ok("neighbour", f"{hop_addr} is at {n.lladdr} ({n.state})")
        return
    w.found.fail("neighbour", f"{hop_addr} does not answer ARP on {n.dev} ({n.state})",
                 cause=w.found.cause("neighbour", 8, f"{hop_addr} does not answer ARP from {w.sname}",
                                     f"check that {hop_addr} is up and on the same bridge as {w.sname}", "neighbour"))
