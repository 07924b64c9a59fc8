"""Hops about policy on the host: forwarding, published ports, the firewall (pure)."""

from __future__ import annotations

import re

from .facts import Attachment, RuleCheck
from .path import is_loopback
from .trace import Fate, LegacyHit, TracedPacket, TraceEvent
from .walk import Walk

#: chain-name prefixes of our own per-network chains (nftables / iptables-legacy)
OWN_ROLES = {"in-": "in", "guard-": "guard", "NETCTL-IN-": "in", "NETCTL-GUARD-": "guard"}
#: the fix for netctl rules that are missing or altered
RELOAD = "netctl firewall reload"


def _routed(w: Walk) -> bool:
    return w.plan.kind in ("routed", "external", "hostport")


def check_forwarding(w: Walk) -> None:
    """``net.ipv4.ip_forward`` on the host, for every path the host routes."""
    if not _routed(w):
        return
    view = w.facts.host.view
    # the evidence of the path's own family: IPv6 routing has its own switch
    key = "net.ipv4.ip_forward" if w.plan.family == 4 else "net.ipv6.conf.all.forwarding"
    fwd = view.ip_forward if w.plan.family == 4 else view.ip6_forward
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


def _bridge(w: Walk, att: Attachment | None) -> str:
    net = w.net(att)
    return net.bridge if net is not None else ""


def _src_ip(w: Walk) -> str:
    src = w.plan.src
    ips = src.ips(w.plan.family) if src is not None else ()
    return ips[0] if ips else ""


def _sent(w: Walk) -> tuple[TracedPacket, ...]:
    trace = w.facts.host.trace
    return trace.outgoing(_src_ip(w)) if trace is not None else ()


def _broken(checks: tuple[RuleCheck, ...]) -> list[str]:
    """What the drivers found missing or altered, each prefixed with what it belongs to."""
    return [f"{c.what}: {p}" for c in checks for p in c.problems]


def check_published(w: Walk) -> None:
    """host:PORT: how the port is published, portmap's rules (driver check), and the DNAT
    the kernel applied to the probe (trace)."""
    t, plan = w.facts.target, w.plan
    if plan.kind != "hostport" or t.mapping is None or w.dst is None:
        return
    m = t.mapping
    if m.host_ip and is_loopback(m.host_ip):
        w.found.fail("published port", f"{m.host_port}/{m.protocol} is published on {m.host_ip} only",
                     cause=w.found.cause(
                         "port-loopback", 1,
                         f"port {m.host_port} is published on {m.host_ip} only: the host itself can reach it, "
                         f"{w.sname} cannot",
                         f"publish it on every address (netctl run -p {m.host_port}:{m.container_port} ...), "
                         f"or reach {w.dst.name} directly on a shared network", "published port"))
        return
    if plan.address is None:
        w.found.fail("published port", f"{w.sname} has no address to reach the host on")
        return
    checks = tuple(c for c in w.facts.host.rules if c.what.startswith("published ports"))
    broken = _broken(checks)
    unread = [f"could not check: {c.what}: {c.error}" for c in checks if c.error]
    nats = [n for p in _sent(w) for n in p.fate().nats if re.search(r"\bdnat\b", n)]
    # where the kernel sent it (the trace's last destination), else where state says
    to = next((p.to for p in _sent(w) if p.to and p.to != p.daddr), plan.final or w.dst.name)
    dest = f"{to}:{m.container_port}"
    if broken:
        w.found.fail("published port", f"portmap's rules for {m.text()} are missing or altered", *broken,
                     *[f"kernel: {n}" for n in nats],
                     cause=w.found.cause("port-rule-missing", 3,
                                         f"the published-port rules of {w.dst.name} are missing or altered",
                                         RELOAD, "published port"))
        return
    if nats:
        w.found.ok("published port", f"{plan.address}:{m.host_port} is DNATed to {dest}",
                   *[f"kernel: {n}" for n in nats], *unread)
        return
    trace = w.facts.host.trace
    if trace is not None and trace.error is None and _sent(w):
        w.found.fail("published port", f"no DNAT rule matched {plan.address}:{m.host_port} from {w.sname}",
                     *[f"traced: {p.what()}" for p in _sent(w)], *unread,
                     cause=w.found.cause("port-rule-mismatch", 4,
                                         f"no rule DNATs {w.sname}'s traffic to {plan.address}:{m.host_port}",
                                         f"compare the published address ({m.text()}) with the one "
                                         f"{w.sname} uses", "published port"))
        return
    w.found.ok("published port", f"{m.text()} is published (portmap's rules are intact)", *unread)


def _comment_net(text: str) -> str:
    m = re.search(r'comment "netctl net=([^" ]+)', text)
    return m.group(1) if m else ""


def _drop_cause(w: Walk, ev: TraceEvent, fate: Fate) -> tuple[str, int, str, str]:
    """(code, rank, message, fix) for the rule or policy that dropped the probe."""
    net = _comment_net(ev.text)
    role = next((r for c in fate.path for p, r in OWN_ROLES.items() if c.startswith(p)), None)
    ours = ev.family == "inet" and ev.table == "netctl" and bool(net)
    if ours and role == "in":
        return ("isolation", 5, f"{net} drops new connections from other networks (isolation)",
                f"connect {w.sname} to {net}: netctl connect {net} {w.sname}")
    if ours and role == "guard":
        return ("internal", 5, f"{net} is internal: its traffic may not leave it",
                f"connect {w.sname} to a network that is not internal: netctl connect NETWORK {w.sname}")
    where = ev.where(fate.path)
    if ev.kind == "policy":
        return ("firewall-policy", 4, f"the policy of {where} is drop",
                f"accept this traffic in {ev.family} {ev.table} {ev.chain}, or set its policy to accept")
    handle = f" handle {ev.handle}" if ev.handle is not None else ""
    return ("firewall-rule", 4, f"{where} drops it: {ev.text}",
            f"remove or change that rule (it is not netctl's): nft -a list chain {ev.family} {ev.table} "
            f"{ev.chain} shows it{', nft delete rule ' + ev.family + ' ' + ev.table + ' ' + ev.chain + handle if handle else ''}")


def _legacy_drop(w: Walk, hit: LegacyHit, evidence: list[str], broken: list[str]) -> None:
    """A legacy DROP/REJECT rule (or policy) counted the probe: the nearest thing to a
    verdict where the kernel cannot trace (its counters, not an evaluation)."""
    fam, table = hit.table.split()
    tool = "iptables-legacy" if fam == "ip" else "ip6tables-legacy"
    fix = (f"{tool} -t {table} -D {hit.text[3:]}" if hit.text.startswith("-A ")
           else f"{tool} -t {table} -P {hit.text[1:].split()[0]} ACCEPT")
    w.found.fail("firewall", f"dropped (its counter rose during the probe): {hit.describe()}", *evidence,
                 cause=w.found.cause("firewall-rule", 4, f"iptables-legacy table {hit.table} drops it: {hit.text}",
                                     f"remove or change that rule: {fix}", "firewall"))
    if broken:
        w.found.causes.append(w.found.cause(*_rules_cause(w, broken), "firewall"))


def _rules_cause(w: Walk, broken: list[str]) -> tuple[str, int, str, str]:
    whats = list(dict.fromkeys(b.split(":", 1)[0] for b in broken))
    why = ": isolation between networks is not enforced" if w.plan.kind == "routed" else ""
    return ("firewall-rules-missing", 4, f"netctl's firewall rules for {', '.join(whats)} are missing or "
            f"altered{why}", RELOAD)


def check_firewall(w: Walk) -> None:
    """The kernel's verdict on the probe (trace) and the drivers' check of netctl's rules."""
    plan, host = w.plan, w.facts.host
    nets = tuple(c for c in host.rules if not c.what.startswith("published ports"))
    broken = _broken(nets)
    evidence = [f"could not check: {c.what}: {c.error}" for c in nets if c.error]
    if broken:
        evidence += [f"missing or altered: {b}" for b in broken]
    trace = host.trace
    if trace is not None and trace.legacy_tables:
        evidence.append(f"iptables-legacy tables ({', '.join(trace.legacy_tables)}) run too: the kernel cannot "
                        "trace their rules; counters that rose during the probe: "
                        + ("; ".join(h.describe() for h in trace.legacy) or "none"))
    bridged_only = plan.kind == "bridged" and host.bridge_nf_call is not True
    dropped = trace.dropped() if trace is not None else None
    probe = w.facts.probe
    legacy = next((h for h in trace.legacy if h.drops), None) if trace is not None else None
    if dropped is None and legacy is not None and probe is not None and not probe.ok:
        _legacy_drop(w, legacy, evidence, broken)
        return
    if dropped is not None:
        pkt, fate = dropped
        assert fate.decisive is not None
        code, rank, msg, fix = _drop_cause(w, fate.decisive, fate)
        w.found.fail("firewall", f"dropped: {fate.decisive.describe(fate.path)}", f"traced: {pkt.what()}",
                     *fate.accepts, *evidence, cause=w.found.cause(code, rank, msg, fix, "firewall"))
        if broken:
            w.found.causes.append(w.found.cause(*_rules_cause(w, broken), "firewall"))
        return
    sent = _sent(w)
    if bridged_only:
        summary = f"bridged traffic on {_bridge(w, plan.src)} skips the IP firewall (bridge-nf-call-iptables off)"
    elif trace is None:
        summary = "no probe was sent, so the kernel's verdict is unknown"
    elif trace.error is not None:
        summary = "the kernel's verdict could not be traced"
        evidence.insert(0, f"trace: {trace.error}")
    elif not sent:
        summary = f"no probe packet reached the host's firewall (table inet {trace.table} traced nothing)"
    else:
        fate = sent[0].fate()
        summary = f"accepted: {fate.accepted_by or 'no chain at the hooks it passed decides anything'}"
        evidence = [f"traced: {p.what()}" for p in sent] + [a for a in fate.accepts if a != fate.accepted_by] \
            + [f"{'masqueraded' if re.search(r'masquerade|snat', n) else 'DNATed'}: {n}" for n in fate.nats] + evidence
        if plan.kind == "external" and not any("masquerade" in n or "snat" in n for n in fate.nats):
            evidence.append(f"not masqueraded: {plan.address} must route {_src_ip(w)} back to the host itself")
    if broken:
        code, rank, msg, fix = _rules_cause(w, broken)
        w.found.fail("firewall", f"{msg.split(': isolation')[0]}: {broken[0].split(': ', 1)[1]}", summary, *evidence,
                     cause=w.found.cause(code, rank, msg, fix, "firewall"))
        return
    if trace is not None and trace.error is None and sent or bridged_only:
        w.found.ok("firewall", summary, *evidence)
    else:
        w.found.info("firewall", summary, *evidence)
