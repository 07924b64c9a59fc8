"""Hops about policy on the host: forwarding, published ports, the firewall (pure)."""

from __future__ import annotations

import re

from .facts import Attachment
from .netfilter import Decision, Packet, Step, evaluate, find_dnat_to
from .path import is_loopback
from .walk import Walk

#: chain-name prefixes of our own per-network chains (nftables / iptables-legacy)
OWN_ROLES = {"in-": "in", "guard-": "guard", "NETCTL-IN-": "in", "NETCTL-GUARD-": "guard"}


def _routed(w: Walk) -> bool:
    return w.plan.kind in ("routed", "external", "hostport")


def check_forwarding(w: Walk) -> None:
    """``net.ipv4.ip_forward`` on the host, for every path the host routes."""
    if not _routed(w):
        return
    key = "net.ipv4.ip_forward" if w.plan.family == 4 else "net.ipv6.conf.all.forwarding"
    fwd = w.facts.host.view.ip_forward
    if fwd is None:
        w.found.info("forwarding", f"{key} could not be read")
    elif fwd:
        w.found.ok("forwarding", f"{key} = 1 on the host")
    else:
        w.found.fail("forwarding", f"{key} = 0 on the host: it routes nothing between its interfaces",
                     cause=w.found.cause("ip-forward-off", 4,
                                         f"{key} is off on the host, so it forwards nothing",
                                         f"turn it back on: sysctl -w {key}=1", "forwarding"))


def check_host_route(w: Walk) -> None:
    """The host's own route to an external address."""
    if w.plan.kind != "external" or w.plan.address is None:
        return
    lookup = w.facts.host.view.lookup(w.plan.address)
    if lookup is None:
        return
    if lookup.ok:
        via = f"via {lookup.gateway} " if lookup.gateway else ""
        w.found.ok("host route", f"the host sends {lookup.dst} {via}out {lookup.dev}")
        return
    w.found.fail("host route", f"the host has no route to {lookup.dst}: {lookup.error}",
                 cause=w.found.cause("host-no-route", 3, f"the host has no route to {lookup.dst}",
                                     f"add one on the host: ip route add {lookup.dst} via GATEWAY", "host route"))


def _src_ip(w: Walk) -> str:
    src = w.plan.src
    ips = src.ips(w.plan.family) if src is not None else ()
    return ips[0] if ips else ("0.0.0.0" if w.plan.family == 4 else "::")


def _bridge(w: Walk, att: Attachment | None) -> str:
    net = w.net(att)
    return net.bridge if net is not None else ""


def _dnat(w: Walk) -> Decision | None:
    """Prerouting NAT for the packet to host:PORT; None when it cannot be built."""
    t, plan = w.facts.target, w.plan
    if plan.address is None or t.port is None:
        return None
    pkt = Packet(plan.family, _src_ip(w), plan.address, iifname=_bridge(w, plan.src), l4proto=w.facts.proto,
                 dport=t.port, local=w.facts.host.view.addresses())
    return evaluate(w.facts.host.firewall, "prerouting", pkt, "nat")


def check_published(w: Walk) -> Decision | None:
    """host:PORT: how the port is published, and whether a DNAT rule catches the packet."""
    t, plan = w.facts.target, w.plan
    if plan.kind != "hostport" or t.mapping is None or w.dst is None:
        return None
    m = t.mapping
    rules = find_dnat_to(w.facts.host.firewall, plan.final or "")
    # the rules for this host port (a container may publish several)
    mine = [(c, r) for c, r in rules if re.search(rf"\b{m.host_port}\b", r.text)] or list(rules)
    found = [f"{c.where}: {r.text}" for c, r in mine] or [f"no rule DNATs to {plan.final}"]
    if m.host_ip and is_loopback(m.host_ip):
        w.found.fail("published port", f"{m.host_port}/{m.protocol} is published on {m.host_ip} only", *found,
                     cause=w.found.cause(
                         "port-loopback", 1,
                         f"port {m.host_port} is published on {m.host_ip} only: the host itself can reach it, "
                         f"{w.sname} cannot",
                         f"publish it on every address (netctl run -p {m.host_port}:{m.container_port} ...), "
                         f"or reach {w.dst.name} directly on a shared network", "published port"))
        return None
    dec = _dnat(w)
    if dec is not None and dec.verdict == "dnat":
        assert dec.decisive is not None
        w.found.ok("published port", f"{plan.address}:{m.host_port} is DNATed to {dec.target}",
                   dec.decisive.describe())
        return dec
    if plan.address is None:
        w.found.fail("published port", f"{w.sname} has no address to reach the host on")
        return None
    if not rules:
        w.found.fail("published port", f"no published-port rule for {w.dst.name}'s {m.text()}", *found,
                     cause=w.found.cause(
                         "port-rule-missing", 3, f"the published-port rule for {m.text()} is missing",
                         f"netctl check {w.dst.name} shows what is missing; is the portmap plugin installed "
                         f"(ls $(netctl plugins dir))?", "published port"))
        return None
    w.found.fail("published port", f"no published-port rule matches {plan.address}:{m.host_port} from {w.sname}",
                 *found, *[f"not evaluated: {u}" for u in (dec.unknown if dec else ())],
                 cause=w.found.cause("port-rule-mismatch", 4,
                                     f"the rules for {m.text()} do not match traffic from {w.sname} "
                                     f"to {plan.address}", "compare the rules above with the published address",
                                     "published port"))
    return None


def _packet(w: Walk, dnat: Decision | None) -> tuple[str, Packet] | None:
    """(hook, packet) the firewall sees on this path; None when it does not apply."""
    plan = w.plan
    fam, proto = plan.family, w.facts.proto
    dport = w.facts.target.port
    if plan.address is None:
        return None
    if plan.kind == "hostport":
        if dnat is None:
            return "input", Packet(fam, _src_ip(w), plan.address, iifname=_bridge(w, plan.src), l4proto=proto,
                                   dport=dport)
        m = w.facts.target.mapping
        return "forward", Packet(fam, _src_ip(w), plan.final or "", iifname=_bridge(w, plan.src),
                                 oifname=_bridge(w, plan.dst), l4proto=proto,
                                 dport=m.container_port if m else dport, ct_status=("dnat",))
    oif = _bridge(w, plan.dst)
    if plan.kind == "bridged":
        oif = _bridge(w, plan.src)
    elif plan.kind == "external":
        lookup = w.facts.host.view.lookup(plan.address)
        oif = (lookup.dev or "") if lookup is not None else ""
    return "forward", Packet(fam, _src_ip(w), plan.address, iifname=_bridge(w, plan.src), oifname=oif,
                             l4proto=proto, dport=dport)


def _drop_cause(w: Walk, step: Step, hook: str) -> tuple[str, int, str, str]:
    """(code, rank, message, fix) for the step that drops the packet."""
    chain = step.in_chain or step.chain
    owner = (step.rule.comment or "") if step.rule is not None else ""
    net = owner.split("net=", 1)[1].split()[0] if "net=" in owner else ""
    role = next((r for p, r in OWN_ROLES.items() if chain.name.startswith(p)), None)
    if role == "in" and net:
        return ("isolation", 5, f"{net} drops new connections from other networks (isolation)",
                f"connect {w.sname} to {net}: netctl connect {net} {w.sname}")
    if role == "guard" and net:
        return ("internal", 5, f"{net} is internal: its traffic may not leave it",
                f"connect {w.sname} to a network that is not internal: netctl connect NETWORK {w.sname}")
    if step.rule is None:
        return ("firewall-policy", 4, f"the {hook.upper()} policy of {step.chain.where} is drop",
                f"accept this traffic in {step.chain.where}, or set its policy to accept")
    return ("firewall-rule", 4, f"{chain.where} drops it: {step.rule.text}", "remove or change that rule")


def check_firewall(w: Walk, dnat: Decision | None) -> None:
    """Run the path's packet through the live rulesets; name the deciding rule or policy."""
    plan, host = w.plan, w.facts.host
    if plan.kind == "bridged" and host.bridge_nf_call is not True:
        w.found.ok("firewall", f"bridged traffic on {_bridge(w, plan.src)} skips the IP firewall "
                   "(bridge-nf-call-iptables off)")
        return
    built = _packet(w, dnat)
    if built is None:
        return
    hook, pkt = built
    dec = evaluate(host.firewall, hook, pkt)
    where = f"{pkt.l4proto} {pkt.saddr} → {pkt.daddr}{':' + str(pkt.dport) if pkt.dport else ''}" \
            f" (in {pkt.iifname or '?'}{', out ' + pkt.oifname if pkt.oifname else ''}), {hook}"
    unknown = [f"not evaluated: {u}" for u in dec.unknown]
    errors = [f"could not read: {e}" for e in host.errors]
    if dec.verdict == "drop" and dec.decisive is not None:
        code, rank, msg, fix = _drop_cause(w, dec.decisive, hook)
        w.found.fail("firewall", f"dropped: {dec.decisive.describe()}", where, *unknown, *errors,
                     cause=w.found.cause(code, rank, msg, fix, "firewall"))
        return
    steps = [s.describe() for s in dec.steps]
    if not dec.steps:
        w.found.ok("firewall", f"no chain at the {hook} hook: accepted", where, *errors)
        return
    decisive = dec.decisive.describe() if dec.decisive is not None else "accepted"
    nat = []
    if plan.kind == "external":
        out = evaluate(host.firewall, "postrouting", pkt, "nat")
        if out.verdict in ("masquerade", "snat") and out.decisive is not None:
            nat.append(f"masqueraded: {out.decisive.describe()}")
        else:
            nat.append(f"not masqueraded: {pkt.daddr} must route {pkt.saddr} back to the host itself")
    w.found.ok("firewall", f"accepted: {decisive}", where, *[s for s in steps if s != decisive], *nat,
               *unknown, *errors)
